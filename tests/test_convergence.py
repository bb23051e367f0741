"""meanfield_dropout.convergence: measure_distances, convergence_study, fits, bad input."""
import pickle

import numpy as np
import pytest

from meanfield_dropout.runtime import results
from meanfield_dropout.convergence import (CellSettings, ConvergenceStudy, convergence_study,
                                           measure_distances)
from meanfield_dropout.data import teacher_student
from meanfield_dropout.network import init_particles
from meanfield_dropout.limits import LimitConstants, simulate_limit
from meanfield_dropout.network import network_data
from meanfield_dropout.plots.figures import convergence_figure, save_figure
from meanfield_dropout.stats import fit_slopes
from phase_diagram.scan.cell_functions import distances_cell

TINY = teacher_student(dim=3, data_points=10, teacher_width=2, seed=0)


def cell(**kw):
    args = dict(width=30, master_lr=0.1, keep_prob=0.5, limits=["wgf", "jump-poisson"],
                alpha=0.2, beta=None, tau=None, horizon=0.5, seed=3, data=TINY, n_times=3)
    args.update(kw)
    return distances_cell(**args)


def test_measure_distances_layout_time_zero_and_round_trip(tmp_path):
    out = cell(coupled=("ram", "gd"))
    np.testing.assert_allclose(out["times"], [0.0, 0.25, 0.5])
    np.testing.assert_array_equal(out["dropout_steps"], [0, 2, 5])
    for name in ("wgf", "jump-poisson"):
        for key in ("predictor", "w2", "limit_loss", "times", "steps"):
            assert out[name][key].shape == (3,)
        assert out[name]["predictor"][0] == 0.0 and out[name]["w2"][0] == 0.0
        assert np.all(out[name]["predictor"][1:] > 0)
    assert out["coupled_rms"]["ram"].shape == (3,)
    assert out["seed"] == 3
    back = results.load(results.save(out, tmp_path / "cell.npz"))
    assert back.keys() == out.keys() and back["coupled_rms"].keys() == {"ram", "gd"}
    np.testing.assert_array_equal(back["jump-poisson"]["predictor"],
                                  out["jump-poisson"]["predictor"])


def test_dropout_motion_is_zero_exactly_while_no_neuron_was_kept():
    moving = cell()
    assert moving["dropout_motion"].shape == (3,) and moving["dropout_motion"][0] == 0.0
    assert np.all(moving["dropout_motion"][1:] > 0)
    # keep probability 1e-9 at width 30 over 5 steps: P(any neuron kept) = 1.5e-7
    frozen = cell(keep_prob=1e-9)
    np.testing.assert_array_equal(frozen["dropout_motion"], 0.0)
    # dropout stayed at its initial network, so its distance to a limit is the limit's motion
    assert np.all(frozen["wgf"]["predictor"][1:] > 0)


def test_limits_are_simulated_at_the_dropout_times():
    """Grid times 0.25, 0.5 are not multiples of τ_n = 0.15: dropout is read at steps 2, 3 and
    each limit at the same time k τ_n (the Bernoulli limit at step k, time k τ)."""
    out = cell(master_lr=0.15, limits={"wgf": {}, "jump-poisson": {},
                                       "jump-bernoulli": dict(alpha=0.6, tau=0.3)})
    for name in ("wgf", "jump-poisson"):
        np.testing.assert_array_equal(out[name]["steps"], [0, 2, 3])
        np.testing.assert_allclose(out[name]["times"], [0.0, 0.3, 0.45], rtol=1e-12)
    np.testing.assert_array_equal(out["jump-bernoulli"]["steps"], [0, 1, 2])
    np.testing.assert_allclose(out["jump-bernoulli"]["times"], [0.0, 0.3, 0.6], rtol=1e-12)
    X0 = init_particles(30, TINY.inputs.shape[1], seed=np.random.SeedSequence(3).spawn(1)[0])
    flow = simulate_limit("wgf", network_data(TINY.inputs, TINY.targets, activation="tanh"),
                          times=[0.0, 0.3, 0.45], initial=X0).predictor
    np.testing.assert_allclose(out["wgf"]["limit_loss"],
                               0.5 * np.mean((flow - TINY.targets) ** 2, axis=1), rtol=1e-12)


def test_measure_distances_is_deterministic_and_picklable():
    first, second = cell(), cell()
    seed = np.random.SeedSequence(3)
    third, fourth = cell(seed=seed), cell(seed=seed)
    np.testing.assert_array_equal(third["jump-poisson"]["predictor"],
                                  fourth["jump-poisson"]["predictor"])
    assert third["seed"] == {"entropy": "3", "spawn_key": []} and first["seed"] == 3
    np.testing.assert_array_equal(first["jump-poisson"]["predictor"],
                                  second["jump-poisson"]["predictor"])
    assert pickle.loads(pickle.dumps(measure_distances)) is measure_distances


def test_limit_stream_does_not_depend_on_other_limits():
    both = cell()
    alone = cell(limits=["jump-poisson"])
    np.testing.assert_array_equal(both["jump-poisson"]["predictor"],
                                  alone["jump-poisson"]["predictor"])


def test_without_dropout_gd_is_the_bernoulli_limit_exactly():
    """q_n = 1 and τ_n = τ: dropout = GD = Bernoulli jump with q = 1, particle for particle."""
    out = cell(master_lr=0.25, keep_prob=1.0, limits=["jump-bernoulli"], alpha=0.25,
               tau=0.25, horizon=1.0)
    assert np.max(out["jump-bernoulli"]["predictor"]) < 1e-12
    assert np.max(out["jump-bernoulli"]["w2"]) < 1e-9


def test_bernoulli_jump_system_shares_dropout_masks():
    """With τ_n = τ and q_n = q the coupled Bernoulli jump system is RaM, mask for mask."""
    kw = dict(master_lr=0.25, keep_prob=0.5, horizon=1.0, coupled=("ram", "jump-bernoulli"))
    same = cell(limits={"jump-bernoulli": dict(alpha=0.5, tau=0.25)}, **kw)
    np.testing.assert_array_equal(same["coupled_rms"]["jump-bernoulli"],
                                  same["coupled_rms"]["ram"])
    assert np.all(same["coupled_rms"]["ram"][1:] > 0)
    with pytest.raises(ValueError, match="jump-bernoulli"):
        cell(coupled=("jump-bernoulli",))


def test_small_steps_without_dropout_approach_wgf():
    coarse = cell(master_lr=0.05, keep_prob=1.0, limits=["wgf"], horizon=1.0)
    fine = cell(master_lr=0.0125, keep_prob=1.0, limits=["wgf"], horizon=1.0)
    assert fine["wgf"]["predictor"][-1] < 0.4 * coarse["wgf"]["predictor"][-1]


def test_more_limit_particles_share_the_first_n():
    out = cell(limits=["wgf"], limit_particles=45)
    assert out["limit_particles"] == 45
    assert out["wgf"]["predictor"][0] > 0      # extra particles change ∫φ dμ₀


def test_convergence_study_plot_and_round_trip(tmp_path):
    settings = CellSettings(["wgf"], 0.4, data=TINY, n_times=3, coupled=("ram",))
    study = convergence_study(lambda n: 2.0 / n, lambda n: 0.5, [20, 40], settings, repeats=2,
                              seed=1, progress=False, label="tiny")
    assert study.distances["wgf"]["predictor"].shape == (2, 2, 3)
    assert study.fits["wgf"]["predictor"]["slopes"].shape == (2,)
    assert "coupled_rms/ram" in study.fits
    np.testing.assert_allclose(study.master_lr, [0.1, 0.05])
    path = tmp_path / "c.png"
    save_figure(convergence_figure([study, study]), path)
    assert path.stat().st_size > 0
    back = results.load(results.save(study, tmp_path / "study.npz"), ConvergenceStudy)
    assert back.label == "tiny" and back.settings == study.settings
    np.testing.assert_array_equal(back.fits["wgf"]["predictor"]["slopes"],
                                  study.fits["wgf"]["predictor"]["slopes"])


@pytest.mark.parametrize("kwargs, name", [
    (dict(width=0), "width"),
    (dict(keep_prob=1.5), "keep_prob"),
    (dict(master_lr=np.nan), "master_lr"),
    (dict(horizon=-1.0), "horizon"),
    (dict(n_times=1), "n_times"),
    (dict(limits=["jump-poisson"], alpha=None), "alpha"),
    (dict(limits=["critical"], beta=0.0), "beta"),
    (dict(limits=["jump"]), "limit"),
    (dict(limits={"jump-poisson": dict(alpha=np.inf)}), "alpha"),
    (dict(coupled=("pn",)), "coupled"),
    (dict(w2_particles=0), "w2_particles"),
    (dict(bogus=1), "bogus"),
])
def test_bad_input_names_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        cell(**kwargs)


def test_settings_are_a_cell_settings_with_limit_constants():
    with pytest.raises(ValueError, match="settings must be a CellSettings, got list"):
        measure_distances(30, 0.1, 0.5, ["wgf"], seed=0)
    with pytest.raises(ValueError, match="constants must be a LimitConstants, got dict"):
        measure_distances(30, 0.1, 0.5, CellSettings(["wgf"], 0.5, dict(alpha=1.0)), seed=0)


def test_study_bad_input():
    settings = CellSettings(["wgf"], 2.0)
    with pytest.raises(ValueError, match="widths"):
        convergence_study(lambda n: 0.1, lambda n: 0.5, [20], settings)
    with pytest.raises(ValueError, match="keep"):
        convergence_study(lambda n: 0.1, lambda n: 2.0, [20, 40], settings)
    with pytest.raises(ValueError, match="seed"):
        convergence_study(lambda n: 0.1, lambda n: 0.5, [20, 40], settings, seed=-1)
    with pytest.raises(ValueError, match="settings must be a CellSettings"):
        convergence_study(lambda n: 0.1, lambda n: 0.5, [20, 40], ["wgf"])


# Scientific check (slow): run with ``python -m pytest -m slow tests/test_convergence.py``

@pytest.mark.slow
def test_paper_teacher_student_coupled_distances():
    """τ = 0.5, q = 0.7, ReLU, paper's data, step 100: dropout ↔ RaM falls with the width,
    dropout ↔ GD does not (the paper's distance_traj_width_log_log figure)."""
    data = teacher_student()
    widths = [200, 500, 1000, 2000]
    rms = {"ram": np.empty((2, 4)), "gd": np.empty((2, 4))}
    for w, n in enumerate(widths):
        for r in range(2):
            settings = CellSettings(["jump-bernoulli"], 50.0,
                                    LimitConstants(alpha=0.5 / 0.7, tau=0.5), data=data,
                                    activation="relu", n_times=2, coupled=("ram", "gd"))
            out = measure_distances(n, 0.5, 0.7, settings, seed=r)
            for v in rms:
                rms[v][r, w] = out["coupled_rms"][v][-1]
    ram, gd = fit_slopes(widths, rms["ram"]), fit_slopes(widths, rms["gd"])
    assert np.all(ram["slopes"] < -0.3), ram
    assert np.all(gd["slopes"] > -0.1), gd
    assert np.all(rms["gd"][:, -1] > 2 * rms["ram"][:, -1])
