"""No silent wrong distances: divergence (finite blow-ups included) with its step, horizons
that run no step, memory refused and long runs announced before anything runs."""
import pickle
import warnings

import numpy as np
import pytest

from meanfield_dropout import convergence
from meanfield_dropout.convergence import CellSettings, convergence_study, estimate_cost
from meanfield_dropout.data import teacher_student
from meanfield_dropout.engine import DivergenceError
from meanfield_dropout.runtime import memory
from meanfield_dropout.runtime.memory import LongRunWarning, MemoryLimitError, warn_long_run
from phase_diagram.scan.cell_functions import distances_cell

TINY = teacher_student(dim=3, data_points=10, teacher_width=2, seed=0)


def cell(**kw):
    args = dict(width=20, master_lr=0.05, keep_prob=0.5, limits=["wgf"], alpha=None,
                beta=None, tau=None, horizon=0.5, seed=0, data=TINY, n_times=3)
    args.update(kw)
    return distances_cell(**args)


def test_a_dropout_blow_up_is_a_divergence_with_its_step_never_a_distance():
    with pytest.raises(DivergenceError, match=r"width 20, master_lr 20.*'dropout' diverged "
                                              r"at step 7") as info:
        cell(master_lr=20.0, horizon=200.0)
    assert info.value.step == 7 and info.value.variant == "dropout"
    # the bounds are an option: a smaller factor stops the same run earlier
    with pytest.raises(DivergenceError) as early:
        cell(master_lr=20.0, horizon=200.0, divergence_factor=10.0)
    assert early.value.step < 7
    back = pickle.loads(pickle.dumps(info.value))           # crosses process pools intact
    assert str(back) == str(info.value) and back.step == 7


def test_a_finite_limit_blow_up_is_a_divergence_at_the_dropout_step():
    """α = 200 makes the Poisson jumps overshoot: the limit stays finite but leaves
    10^6 × its initial scale within t ≤ 400, at a ring reported with the cell."""
    with pytest.raises(DivergenceError, match=r"width 20.*limit 'jump-poisson' diverged at "
                                              r"ring \d+ \(in the time interval \(\d"):
        cell(limits=["jump-poisson"], alpha=200.0, horizon=400.0)
    cell(limits=["jump-poisson"], alpha=200.0, horizon=400.0, divergence_factor=1e300)


def test_a_horizon_shorter_than_half_a_step_is_refused_with_the_smallest_valid_one():
    with pytest.raises(ValueError, match=r"horizon 0.5 runs no step of dropout at width 20 "
                                         r".*smallest valid horizon is 10 "):
        cell(master_lr=10.0)
    with pytest.raises(ValueError, match="Bernoulli jump limit.*smallest valid horizon is 3"):
        cell(limits=["jump-bernoulli"], alpha=6.0, tau=3.0, horizon=1.0)
    # a study is checked at every width before any cell runs: the largest step counts
    with pytest.raises(ValueError, match=r"width 20 .*smallest valid horizon is 2.236e\+05"):
        convergence_study(lambda n: 1e6 * n ** -0.5, lambda n: 0.5, [20, 40],
                          CellSettings(["wgf"], 0.5, n_times=2, data=TINY), progress=False)
    assert cell(master_lr=0.4)["dropout_steps"][-1] == 1      # 0.5 / 0.4 rounds to one step


def test_memory_is_estimated_and_refused_before_allocating():
    with pytest.raises(MemoryLimitError, match="a cell at width 1000000000000 .* needs"):
        cell(width=10 ** 12)
    with pytest.raises(MemoryLimitError, match="limit particles"):
        cell(limit_particles=10 ** 12)
    # the Poisson partners of the critical limit: ~1/β per ring
    with pytest.raises(MemoryLimitError):
        cell(limits=["critical"], alpha=1.0, beta=1e-12)
    nbytes, operations = estimate_cost(20, 0.05, 0.5, CellSettings(["wgf"], 0.5, data=TINY,
                                                                    n_times=3))
    assert 0 < nbytes < 1e6 and 0 < operations < 1e8


def test_long_runs_are_announced_with_their_estimate(monkeypatch):
    with pytest.warns(LongRunWarning, match=r"this run is a long run: about 16\.7 min of one "
                                            r"core \(a cost model's estimate\); ask less"):
        warn_long_run(1000.0, "this run", "ask less")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_long_run(memory.LONG_RUN_SECONDS, "a run at the threshold")

    def stop(*args):
        raise RuntimeError("not run")

    monkeypatch.setattr(convergence, "_measure", stop)
    with pytest.warns(LongRunWarning, match="measure_distances at width 2000"):
        with pytest.raises(RuntimeError, match="not run"):
            cell(width=2000, master_lr=1e-9, horizon=10.0, n_times=2)
    with pytest.warns(LongRunWarning, match="convergence study 'tiny'"):
        with pytest.raises(RuntimeError, match="not run"):
            convergence_study(lambda n: 1e-9, lambda n: 0.5, [2000, 4000],
                              CellSettings(["wgf"], 10.0, n_times=2, data=TINY),
                              progress=False, label="tiny")


def test_large_runs_that_fit_are_announced_with_their_memory(monkeypatch):
    from meanfield_dropout.runtime import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 64 << 30)
    with pytest.warns(memory.LargeRunWarning, match=r"the test run needs about 2\.0 GiB "
                                                    r"\(3% of the 64\.0 GiB available\)"):
        memory.check_memory(2 << 30, "the test run")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        memory.check_memory(1 << 29, "a small run")
    with pytest.raises(MemoryLimitError, match="more than 50% of the 64.0 GiB"):
        memory.check_memory(40 << 30, "a huge run")


def test_w2_subsets_above_the_assignment_limit_need_a_scalable_method():
    with pytest.raises(ValueError, match="w2_particles must be <= 5000 .* 'network-simplex' "
                                         "or 'sliced'"):
        cell(w2_particles=6000)
    with pytest.raises(ValueError, match="w2_method must be one of"):
        cell(w2_method="exact")
    pytest.importorskip("ot")
    exact = cell(limits=["wgf"], limit_particles=30)
    simplex = cell(limits=["wgf"], limit_particles=30, w2_method="network-simplex")
    np.testing.assert_allclose(simplex["wgf"]["w2"], exact["wgf"]["w2"], rtol=1e-6, atol=1e-12)
