"""The Numba engine against the NumPy reference, exactness at q = 1, statistics, determinism."""
import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from scipy.stats import norm

from meanfield_dropout import (DivergenceError, SimulationResult, init_particles, loss_value,
                               simulate, teacher_student)
from meanfield_dropout import engine
from meanfield_dropout.kernels import twins, variants
from meanfield_dropout.cli.main import main
from meanfield_dropout.engine import VARIANTS
from meanfield_dropout.noise import ExplicitNoise
from meanfield_dropout.runtime import threads as thread_limits

from . import reference

ACTIVATIONS = ("relu", "tanh", "softplus", "sigmoid")


def small_problem(seed=0, width=70, dim=3, points=9, bias=False, logistic=False):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((points, dim))
    y = np.sign(rng.standard_normal(points)) if logistic else rng.standard_normal(points)
    X = init_particles(width, dim, seed=seed + 1, bias=bias)
    return X, Z, y


def engine_steps(X, Z, y, variant, masks, fwd_masks, batches, keep_prob, lr, penalty,
                 activation, bias, loss):
    """Run the engine on explicit masks/batches; returns the particles after each step."""
    out = []
    for k in range(masks.shape[0]):
        noise = ExplicitNoise(masks[k:k + 1], fwd_masks[k:k + 1],
                              batches[k:k + 1] if batches.shape[1] else None)
        X = simulate(Z, y, initial=X, master_lr=lr, steps=1, keep_prob=keep_prob,
                     variants=(variant,), penalty=penalty if variant == "penalized" else None,
                     activation=activation, bias=bias, loss=loss, noise=noise,
                     progress=False).final[variant]
        out.append(X.copy())
    return out


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("activation,bias,loss,batch", [
    ("relu", False, "square", None), ("tanh", True, "square", 4),
    ("softplus", False, "logistic", None), ("sigmoid", True, "logistic", 5)])
def test_kernel_matches_reference(variant, activation, bias, loss, batch):
    X, Z, y = small_problem(bias=bias, logistic=loss == "logistic")
    rng = np.random.default_rng(5)
    steps, keep_prob, lr, penalty = 4, 0.6, 0.3, 0.02
    masks = rng.random((steps, X.shape[0])) < keep_prob
    fwd_masks = rng.random((steps, X.shape[0])) < keep_prob
    if batch is None:
        batches = np.empty((steps, 0), dtype=np.int64)
    else:
        batches = np.stack([rng.choice(Z.shape[0], batch, replace=False) for _ in range(steps)])
    got = engine_steps(X, Z, y, variant, masks, fwd_masks, batches, keep_prob, lr,
                       penalty if variant == "penalized" else 0.0, activation, bias, loss)
    want = X
    for k in range(steps):
        idx = slice(None) if batch is None else batches[k]
        want = reference.step(want, Z[idx], y[idx], variant, masks[k], fwd_masks[k],
                              keep_prob, lr, 1.0 / X.shape[0], penalty, activation, bias, loss)
        np.testing.assert_allclose(got[k], want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", ["square", "logistic"])
def test_gradient_matches_finite_differences(activation, loss):
    """A gd step moves neuron i by τ · n · ∂L/∂x_i (mean-field scaling, step n·τ)."""
    X, Z, y = small_problem(width=6, bias=True, logistic=loss == "logistic")
    X[:, 1:] += 0.3  # keep relu pre-activations away from the kink at 0
    lr = 1e-3
    net = dict(activation=activation, bias=True)
    stepped = simulate(Z, y, initial=X, master_lr=lr, steps=1, variants=("gd",), loss=loss,
                       progress=False, **net).final["gd"]
    grad = (X - stepped) / (lr * X.shape[0])
    eps = 1e-6
    numeric = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        plus, minus = X.copy(), X.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (loss_value(plus, Z, y, loss=loss, **net)
                        - loss_value(minus, Z, y, loss=loss, **net)) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_every_variant_equals_gd_when_nothing_is_dropped():
    data = teacher_student(dim=5, data_points=40, seed=3)
    result = simulate(data.inputs, data.targets, width=50, keep_prob=1.0, master_lr=0.5,
                      steps=20, variants=VARIANTS, seed=1, progress=False)
    for name in VARIANTS:
        np.testing.assert_array_equal(result.final[name], result.final["gd"])
        np.testing.assert_array_equal(result.train_loss[name], result.train_loss["gd"])


def test_dropout_minus_ram_has_the_penalty_mean():
    """E[dropout increment − RaM increment] = −τ (1 − q)/(n q) Dφ(x_i)ᵀ φ(x_i) per neuron."""
    X, Z, y = small_problem(width=8, dim=2, points=5, bias=False)
    keep_prob, lr, draws = 0.5, 0.1, 4000
    rng = np.random.default_rng(11)
    diffs = np.empty((draws,) + X.shape)
    no_batch = np.empty((1, 0), dtype=np.int64)
    for t in range(draws):
        mask = rng.random((1, X.shape[0])) < keep_prob
        drop = engine_steps(X, Z, y, "dropout", mask, mask, no_batch, keep_prob, lr, 0.0,
                            "tanh", False, "square")[0]
        ram = engine_steps(X, Z, y, "ram", mask, mask, no_batch, keep_prob, lr, 0.0,
                           "tanh", False, "square")[0]
        diffs[t] = drop - ram
    phi, _, _ = reference.features(X, Z, "tanh", False)
    expected = -lr * (1 - keep_prob) / (X.shape[0] * keep_prob) * \
        reference.jacobian_transpose(X, Z, "tanh", False, phi / Z.shape[0])
    mean = diffs.mean(axis=0)
    stderr = diffs.std(axis=0, ddof=1) / np.sqrt(draws)
    # two-sided test on every coordinate, Bonferroni-corrected to a 1e-3 false-alarm rate
    z = norm.ppf(1 - 1e-3 / (2 * X.size))
    assert np.all(np.abs(mean - expected) <= z * stderr)
    # and the mean is resolved: the expected value is several standard errors from zero
    assert np.median(np.abs(expected) / stderr) > 3


def run_small(seed=4, width=130, variants=("dropout", "pn_ram", "ram"), batch_size=10, **kw):
    data = teacher_student(dim=4, data_points=30, seed=2)
    targets = kw.pop("targets", data.targets)
    val_targets = data.val_targets if targets is data.targets else None
    return simulate(data.inputs, targets, width=width, keep_prob=0.7, master_lr=0.5,
                    steps=15, variants=variants, seed=seed, batch_size=batch_size,
                    progress=False, snapshot_steps=(0, 7, 15),
                    val_inputs=data.val_inputs if val_targets is not None else None,
                    val_targets=val_targets, **kw)


def _classes(points=30, classes=3):
    return np.eye(classes)[np.arange(points) % classes]


#: The kernels' paths: the ReLU sign path (one output, no penalty) with minibatches and PN
#: masks, the generic path (tanh, a bias, a penalty, the loss records' shared pass), several
#: outputs (softmax), the logistic loss; one block of neurons, several, a partial last one.
TWIN_CASES = [
    dict(),
    dict(width=64, activation="tanh", bias=True, variants=VARIANTS, batch_size=None,
         penalty=0.3),
    dict(width=150, activation="softplus", loss="softmax", targets=_classes(),
         variants=("dropout", "pn")),
    dict(width=70, loss="logistic", targets=np.sign(_classes(classes=2)[:, 0] - 0.5),
         variants=("gd", "pn_ram"), batch_size=None),
    pytest.param(dict(dtype="float32"), marks=pytest.mark.slow),
]


@pytest.mark.parametrize("case", TWIN_CASES)
def test_serial_and_parallel_kernels_give_the_same_bits(monkeypatch, case):
    """The serial twins (one thread, or a short run) and the parallel kernels on every
    thread, from one seed: the same numbers to the last bit."""
    # the parallel kernels on every thread, even on this small, short problem
    monkeypatch.setattr(thread_limits, "threads_for", lambda cells, available: available)
    ran = []
    monkeypatch.setattr(engine, "for_run", lambda kernel, parallel: ran.append(
        twins.for_run(kernel, parallel)) or ran[-1])
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run_small(**case)
        numba.set_num_threads(max(2, threads))
        monkeypatch.setattr(engine, "PARALLEL_SECONDS", 0.0)
        many = run_small(**case)
    finally:
        numba.set_num_threads(threads)
    # the sign path's copy when every rule takes it (ReLU, one output, no penalty)
    chunk = variants._run_chunk if case.get("activation") == "tanh" or \
        case.get("loss") == "softmax" else twins.sign_path_only(variants._run_chunk)
    assert ran == [twins.serial(chunk), chunk]
    for name in one.variants:
        np.testing.assert_array_equal(one.final[name], many.final[name])
        np.testing.assert_array_equal(one.train_loss[name], many.train_loss[name])
        np.testing.assert_array_equal(one.val_loss.get(name), many.val_loss.get(name))
    assert not np.array_equal(run_small(seed=5, **case).final[name], one.final[name])


@pytest.mark.parametrize("given, expected", [
    ({}, "1000"),                                   # the package's short spin
    ({"GOMP_SPINCOUNT": "50"}, "50"),               # the user's spin count is kept
    ({"OMP_WAIT_POLICY": "PASSIVE"}, None),         # the user's wait policy is left alone
])
def test_openmp_spin_is_short_unless_the_user_chose(given, expected):
    env = {k: v for k, v in os.environ.items()
           if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    code = "import os, meanfield_dropout; print(os.environ.get('GOMP_SPINCOUNT'))"
    out = subprocess.run([sys.executable, "-c", code], env={**env, **given},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(expected)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("batch_size", [None, 10])
def test_recomputed_pre_activations_give_the_same_numbers(monkeypatch, batch_size, activation):
    """Above KEEP_PRE_BYTES (KEEP_SIGN_BYTES) the backward pass recomputes the
    pre-activations (on the ReLU sign path, their signs) instead of reading the forward
    pass's: the same products on the same rows, so the same bits. PN and PN + RaM (ReLU)
    keep the forward neurons' signs and add the others', from the loss record's pass over
    the dropped neurons (full batch, every second step) or from a pass of their own."""
    data = teacher_student(dim=4, data_points=30, seed=2)

    def run():
        return simulate(data.inputs, data.targets, width=130, keep_prob=0.7, master_lr=0.5,
                        steps=15, variants=("gd", "dropout", "ram", "penalized", "pn",
                                            "pn_ram"), seed=3, activation=activation,
                        batch_size=batch_size, penalty=0.1, loss_every=2, progress=False)
    kept = run()
    monkeypatch.setattr(variants, "KEEP_PRE_BYTES", 0)
    monkeypatch.setattr(variants, "KEEP_SIGN_BYTES", 0)
    recomputed = run()
    for name in kept.variants:
        np.testing.assert_array_equal(kept.final[name], recomputed.final[name])
        np.testing.assert_array_equal(kept.train_loss[name], recomputed.train_loss[name])


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("outputs", [1, 3])
@pytest.mark.parametrize("width,points,dim,lr", [(200, 30, 4, 0.5), (5, 7, 3, 0.05)])
def test_the_loss_record_does_not_change_the_run(width, points, dim, lr, outputs, activation):
    """A full-batch loss record runs the dropped neurons in the step's own forward pass;
    the kept neurons' products (BLAS rounds them by the shape of the block) and their sum
    must not see them, so the particles are the same bits whatever ``loss_every``."""
    rng = np.random.default_rng(4)
    Z = rng.standard_normal((points, dim))
    y = rng.standard_normal((points, outputs)) if outputs > 1 else rng.standard_normal(points)

    def run(loss_every):
        return simulate(Z, y, width=width, keep_prob=0.7, master_lr=lr, steps=30,
                        variants=("dropout", "ram", "pn", "pn_ram"), seed=5,
                        activation=activation, loss_every=loss_every, progress=False)
    every, once = run(1), run(30)
    for name in every.variants:
        np.testing.assert_array_equal(every.final[name], once.final[name])


def test_a_seed_sequence_reused_gives_the_same_run():
    """Spawning from a passed SeedSequence must not consume it: runs are pure in the seed."""
    seed = np.random.SeedSequence(11).spawn(3)[2]
    first, second = run_small(seed=seed), run_small(seed=seed)
    for name in first.variants:
        np.testing.assert_array_equal(first.final[name], second.final[name])
    assert seed.n_children_spawned == 0


def test_chunking_does_not_change_the_run():
    np.testing.assert_array_equal(run_small(chunk_steps=1).final["pn_ram"],
                                  run_small(chunk_steps=100).final["pn_ram"])


def test_simulate_follows_its_documented_streams():
    """simulate = reference steps with masks drawn from the spawned SeedSequence streams."""
    data = teacher_student(dim=3, data_points=12, seed=0)
    q, lr, steps, width = 0.6, 0.4, 5, 20
    got = simulate(data.inputs, data.targets, width=width, keep_prob=q, master_lr=lr,
                   steps=steps, variants=("pn_ram",), seed=9, batch_size=6, progress=False)
    init, batch, mask, fwd = np.random.SeedSequence(9).spawn(4)
    X = init_particles(width, 3, seed=init)
    batch_rng, mask_rng, fwd_rng = (np.random.default_rng(s) for s in (batch, mask, fwd))
    masks = mask_rng.random((steps, width)) < q
    fwd_masks = fwd_rng.random((steps, width)) < q
    for k in range(steps):
        idx = batch_rng.choice(12, 6, replace=False)
        X = reference.step(X, data.inputs[idx], data.targets[idx], "pn_ram", masks[k],
                           fwd_masks[k], q, lr, 1.0 / width, 0.0)
    np.testing.assert_allclose(got.final["pn_ram"], X, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(
        got.train_loss["pn_ram"][-1],
        reference.full_loss(X, data.inputs, data.targets, 1.0 / width), rtol=1e-12)


def test_result_records_snapshots_and_round_trips(tmp_path):
    result = run_small(snapshot_neurons=[3, 0, 7])
    assert result.loss_steps.tolist() == list(range(16))
    for name in result.variants:
        assert result.snapshots[name].shape == (3, 3, 5)
        np.testing.assert_array_equal(result.snapshots[name][-1], result.final[name][[3, 0, 7]])
        assert np.all(np.isfinite(result.val_loss[name]))
    np.testing.assert_array_equal(result.snapshots["dropout"][0], result.snapshots["ram"][0])
    path = tmp_path / "run.npz"
    result.save(path)
    back = SimulationResult.load(path)
    assert back.settings == result.settings
    for name in result.variants:
        np.testing.assert_array_equal(back.final[name], result.final[name])
        np.testing.assert_array_equal(back.val_loss[name], result.val_loss[name])


def test_float32_tracks_float64():
    data = teacher_student(dim=5, data_points=50, seed=1)
    runs = [simulate(data.inputs, data.targets, width=100, keep_prob=0.7, master_lr=0.5,
                     steps=30, variants=("dropout",), dtype=dtype, progress=False)
            for dtype in ("float32", "float64")]
    assert runs[0].final["dropout"].dtype == np.float32
    np.testing.assert_allclose(runs[0].final["dropout"], runs[1].final["dropout"], atol=1e-3)


def test_dropped_neurons_do_not_move():
    X, Z, y = small_problem(width=30)
    masks = np.zeros((1, 30), bool)
    masks[0, :5] = True
    no_batch = np.empty((1, 0), dtype=np.int64)
    for name in ("dropout", "ram"):
        after = engine_steps(X, Z, y, name, masks, masks, no_batch, 0.5, 0.3, 0.0, "relu",
                             False, "square")[0]
        np.testing.assert_array_equal(after[5:], X[5:])
        assert not np.array_equal(after[:5], X[:5])


def test_divergence_reports_the_step():
    data = teacher_student(dim=4, data_points=20, seed=0)
    with pytest.raises(DivergenceError, match="diverged at step") as info:
        simulate(data.inputs, data.targets, width=10, master_lr=1e8, steps=50,
                 variants=("gd",), progress=False)
    assert 0 < info.value.step < 50 and info.value.variant == "gd"


GOOD = dict(width=5, master_lr=0.1, steps=2, progress=False)


@pytest.mark.parametrize("change,message", [
    (dict(keep_prob=0.0), "keep_prob must be in \\(0, 1\\]"),
    (dict(keep_prob=1.5), "keep_prob must be in \\(0, 1\\]"),
    (dict(master_lr=0.0), "master_lr must be a finite number > 0"),
    (dict(master_lr=float("nan")), "master_lr must be a finite real"),
    (dict(width=0), "width must be an integer in \\[1, inf\\]"),
    (dict(batch_size=11), "batch_size must be an integer in \\[1, 10\\]"),
    (dict(variants=("dropout", "bogus")), "variant must be one of"),
    (dict(activation="gelu"), "activation must be one of"),
    (dict(loss="hinge"), "loss must be one of"),
    (dict(output_scale="ntk"), "output_scale must be one of"),
    (dict(steps=-1), "steps must be an integer"),
    (dict(snapshot_steps=(3,)), "snapshot_steps entry must be an integer in \\[0, 2\\]"),
    (dict(width=None, initial=np.zeros((4, 7))), "initial must have shape \\(width, 4\\)"),
])
def test_bad_arguments_are_named(change, message):
    rng = np.random.default_rng(0)
    Z, y = rng.standard_normal((10, 3)), rng.standard_normal(10)
    with pytest.raises(ValueError, match=message):
        simulate(Z, y, **{**GOOD, **change})


@pytest.mark.parametrize("inputs,targets,message", [
    (np.full((4, 2), np.nan), np.zeros(4), "inputs contains NaN"),
    (np.zeros((4, 2)), np.array([0, 1, np.inf, 0]), "targets contains NaN"),
    (np.zeros((4, 2)), np.zeros(5), "targets has shape \\(5,\\); axis 0 must have length 4"),
    (np.zeros(4), np.zeros(4), "inputs must have 2 dimension"),
])
def test_bad_data_is_named(inputs, targets, message):
    with pytest.raises(ValueError, match=message):
        simulate(inputs, targets, **GOOD)


def test_logistic_loss_needs_labels():
    with pytest.raises(ValueError, match="labels -1 or \\+1"):
        simulate(np.zeros((3, 2)), np.array([0.5, 1, -1]), loss="logistic", **GOOD)


def test_cli_simulate_writes_a_result(tmp_path):
    out = tmp_path / "run.npz"
    assert main(["simulate", "--width", "40", "--keep-prob", "0.7", "--master-lr", "0.5",
                 "--steps", "10", "--variants", "dropout,ram,gd", "--seed", "0", "--dim", "5",
                 "--data-points", "30", "--out", str(out), "--no-progress"]) == 0
    result = SimulationResult.load(out)
    assert result.variants == ("dropout", "ram", "gd")
    assert result.final["ram"].shape == (40, 6)


@pytest.mark.parametrize("args", [
    ("simulate", "--width", "10", "--keep-prob", "0", "--master-lr", "1", "--steps", "2",
     "--out", "x.npz"),
    ("simulate", "--width", "10", "--master-lr", "-1", "--steps", "2", "--out", "x.npz"),
    ("simulate", "--width", "10", "--master-lr", "1", "--steps", "2", "--variants", "nope",
     "--out", "x.npz"),
    ("simulate", "--width", "ten", "--master-lr", "1", "--steps", "2", "--out", "x.npz"),
])
def test_cli_bad_input_exits_2_with_one_line(args, tmp_path, monkeypatch, capsys):
    """In-process (``main``); ``tests/test_bad_input.py`` checks the status of a real
    process."""
    monkeypatch.chdir(tmp_path)
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x.npz").exists()


def test_finite_blow_up_is_a_divergence_with_its_step():
    """A run whose outputs grow far beyond the data's scale stops, even while finite."""
    data = teacher_student(dim=4, data_points=20, seed=0)
    kw = dict(width=30, steps=200, variants=("gd",), progress=False)
    with pytest.raises(DivergenceError, match="diverged at step") as info:
        simulate(data.inputs, data.targets, master_lr=60.0, divergence_factor=100.0, **kw)
    assert 0 < info.value.step < 200
    # the same run with the default factor 1e6 gets further before it is stopped
    with pytest.raises(DivergenceError) as later:
        simulate(data.inputs, data.targets, master_lr=60.0, **kw)
    assert later.value.step >= info.value.step


def test_memory_guard_refuses_before_allocating():
    from meanfield_dropout.runtime.memory import MemoryLimitError
    data = teacher_student(dim=4, data_points=20, seed=0)
    with pytest.raises(MemoryLimitError, match="needs .* more than"):
        simulate(data.inputs, data.targets, width=10**12, master_lr=0.1, steps=1,
                 progress=False)
    with pytest.raises(MemoryLimitError, match="snapshot"):
        simulate(data.inputs, data.targets, width=200_000, master_lr=0.1, steps=10**6,
                 snapshot_steps=range(0, 10**6, 1), progress=False)


@pytest.mark.parametrize("variant", ["dropout", "pn", "pn_ram", "ram"])
def test_loss_record_is_the_unmasked_loss_at_each_step(variant):
    """The record (kept share of the forward pass + the dropped neurons) is the plain loss.

    Both sides sum the same n products a_i σ(u_ij)/n in different orders, so they agree to
    a few n·ε relative (ε the float64 unit roundoff).
    """
    data = teacher_student(dim=4, data_points=30, seed=2)
    steps, width = 8, 150
    result = simulate(data.inputs, data.targets, width=width, keep_prob=0.6, master_lr=0.5,
                      steps=steps, variants=(variant,), seed=3, progress=False,
                      snapshot_steps=range(steps + 1))
    want = [loss_value(result.snapshots[variant][k], data.inputs, data.targets)
            for k in range(steps + 1)]
    np.testing.assert_allclose(result.train_loss[variant], want,
                               rtol=4 * width * np.finfo(float).eps)


@pytest.mark.parametrize("variant", ["gd", "dropout", "pn_ram", "penalized"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_float32_step_is_within_its_rounding_bound_of_float64(variant, activation):
    """One float32 step from float32-representable data stays within a derived bound.

    With u = 2⁻²⁴ (float32 unit roundoff) and Higham's bound γ_k = ku/(1 − ku) for a sum of
    k terms in any order: the forward sum over n neurons errs by γ_{n+d+3} Σ_i |φ_ij|/n per
    point (pre-activation sums of d + 1 terms, σ within 2 ulp), so each residual entry e_j by
    δe_j = (γ_{n+d+3} Σ_i|φ_ij|/n + u|y_j| + 2u|f_j|)/m. A gradient part Σ_j t_j errs by
    γ_{m+d+4} Σ_j |t_j| plus its terms' sensitivity to δe, Σ_j |∂t_j/∂e_j| δe_j; the update
    adds u|x| + 2uτ|g|. The float64 run is exact to ~1e-16 by comparison.
    """
    u = 2.0 ** -24
    gamma = lambda k: k * u / (1 - k * u)  # noqa: E731
    X, Z, y = small_problem(width=60, dim=4, points=25)
    X, Z, y = (a.astype(np.float32).astype(np.float64) for a in (X, Z, y))
    keep, lr, penalty = 0.6, 0.4, 0.05
    rng = np.random.default_rng(2)
    masks = rng.random((1, 60)) < keep
    fwd = rng.random((1, 60)) < keep
    step = {}
    for dtype in ("float32", "float64"):
        step[dtype] = simulate(Z, y, initial=X, master_lr=lr, steps=1, keep_prob=keep,
                               variants=(variant,), penalty=penalty, activation=activation,
                               dtype=dtype, noise=ExplicitNoise(masks, fwd),
                               progress=False).final[variant].astype(np.float64)
    n, m, d = X.shape[0], Z.shape[0], Z.shape[1]
    phi, sig, dsig = reference.features(X, Z, activation, False)
    a = X[:, 0]
    weight = {"gd": 1.0, "penalized": 1.0, "dropout": masks[0] / keep,
              "pn_ram": fwd[0] / keep}[variant]
    weight = np.broadcast_to(weight, (n,))
    f = (weight[:, None] * phi).sum(axis=0) / n
    e = (f - y) / m
    de = (gamma(n + d + 3) * (np.abs(weight[:, None] * phi).sum(axis=0) / n)
          + u * np.abs(y) + 2 * u * np.abs(f)) / m
    lam = penalty if variant == "penalized" else 0.0
    per_neuron = np.abs(e)[None, :] + lam * np.abs(phi) / m
    grad_a = gamma(m + d + 4) * (np.abs(sig) * per_neuron).sum(axis=1) + np.abs(sig) @ de
    grad_w = (gamma(m + d + 4) * (np.abs(dsig * a[:, None]) * per_neuron) @ np.abs(Z)
              + (np.abs(dsig * a[:, None]) * de[None, :]) @ np.abs(Z))
    grad_err = np.column_stack([grad_a, grad_w])
    back = np.ones(n) if variant in ("gd", "penalized", "pn") else masks[0] / keep
    moved = np.abs(step["float64"] - X)
    tolerance = lr * back[:, None] * grad_err + u * np.abs(step["float64"]) + 2 * u * moved
    assert np.all(np.abs(step["float32"] - step["float64"]) <= tolerance)
    # the bound is not vacuous: it is far below the step itself
    assert np.median(tolerance[moved > 0] / moved[moved > 0]) < 1e-3


def test_grouped_settings_run_as_the_keyword_front():
    """plan_simulation on NetworkData, Dynamics and Recording, run by run_simulation, is the
    run simulate makes of the same keywords (same settings record, same numbers)."""
    from meanfield_dropout.engine import run_simulation
    from meanfield_dropout.engine_plan import Dynamics, Recording, plan_simulation
    from meanfield_dropout.network import network_data
    _, Z, y = small_problem(seed=4, width=12, bias=True)
    keywords = dict(master_lr=0.3, steps=7, keep_prob=0.6, variants=("dropout", "penalized"),
                    output_scale="mean_field", penalty=None, batch_size=5, seed=9,
                    divergence_factor=1e6)
    front = simulate(Z, y, width=12, activation="tanh", bias=True, loss_every=3,
                     snapshot_steps=(0, 7), progress=False, **keywords)
    plan = plan_simulation(network_data(Z, y, activation="tanh", bias=True),
                           Dynamics(**keywords), Recording(3, (0, 7), None, 32), width=12)
    grouped = run_simulation(plan, progress=False)
    assert grouped.settings == front.settings
    for name in front.variants:
        np.testing.assert_array_equal(grouped.snapshots[name], front.snapshots[name])
        np.testing.assert_array_equal(grouped.train_loss[name], front.train_loss[name])
    with pytest.raises(ValueError, match="train must be a NetworkData"):
        plan_simulation(Z, Dynamics(**keywords), Recording(1, (), None, 32), width=12)
    with pytest.raises(ValueError, match="batch_size"):
        plan_simulation(network_data(Z, y), Dynamics(**{**keywords, "batch_size": 99}),
                        Recording(1, (), None, 32), width=12)


def test_long_simulations_announce_their_estimate_before_they_start(monkeypatch, capsys):
    """The cost model counts B(4d + 6K) per rule, step and neuron and a forward pass per loss
    record; above ANNOUNCE_SECONDS simulate prints it on stderr before the first step, below
    it (or without progress) nothing."""
    from meanfield_dropout import engine
    from meanfield_dropout.engine_plan import (Dynamics, Recording, plan_simulation,
                                               simulation_seconds)
    from meanfield_dropout.network import network_data
    from meanfield_dropout.runtime import memory
    _, Z, y = small_problem(seed=2, width=8)                  # m = 9 points, d = 3, K = 1

    def planned(width, steps, variants=("dropout", "ram")):
        dynamics = Dynamics(0.1, steps, 0.5, variants, "mean_field", None, None, 0, 1e6)
        return plan_simulation(network_data(Z, y), dynamics, Recording(1, (), None, 32),
                               width=width)
    # 2 rules x 8 neurons x (10 steps x 9 x (12 + 6) + 11 records x 9 x (6 + 2))
    assert simulation_seconds(planned(8, 10)) * memory.NOMINAL_RATE == 2 * 8 * (1620 + 792)
    assert simulation_seconds(planned(16, 10)) == 2 * simulation_seconds(planned(8, 10))
    assert simulation_seconds(planned(8, 10, ("dropout",))) == \
        simulation_seconds(planned(8, 10)) / 2
    estimate = simulation_seconds(planned(8, 10))

    def stop(*args):
        raise RuntimeError("stopped before the first step")
    monkeypatch.setattr(engine, "_drive", stop)
    run = dict(width=8, master_lr=0.1, steps=10, keep_prob=0.5, variants=("dropout", "ram"))
    monkeypatch.setattr(memory, "ANNOUNCE_SECONDS", estimate / 2)
    with pytest.raises(RuntimeError, match="stopped"):
        simulate(Z, y, **run)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("simulate n=8, 10 steps of 2 rule(s): "
                                                   "estimated 0 s")
    with pytest.raises(RuntimeError, match="stopped"):
        simulate(Z, y, **run, progress=False)
    monkeypatch.setattr(memory, "ANNOUNCE_SECONDS", estimate * 2)
    with pytest.raises(RuntimeError, match="stopped"):
        simulate(Z, y, **run)
    assert capsys.readouterr().err == ""
