"""The cost model of a convergence cell (meanfield_dropout.cost_model), through
estimate_cost: affine in the steps, growing with the width, the grid and the W2 subsets; the
cell's shared costs (its start, the dropout run, dropout's losses) counted once per cell
whatever limits it runs; the phase finder's cells priced by the same model."""
import pytest

from meanfield_dropout.convergence import CellSettings, estimate_cost
from meanfield_dropout.data import toy
from meanfield_dropout.limits import LimitConstants
from phase_diagram.finder.plugin import FLOW_DT, cell_seconds

DATA = toy()
CONSTANTS = LimitConstants(alpha=1.0, beta=1.0)


def seconds(width=32, master_lr=0.05, keep_prob=0.5, limits=("wgf",), horizon=1.0,
            **options):
    settings = CellSettings(list(limits), horizon, CONSTANTS,
                            data=(DATA.inputs, DATA.targets), **options)
    return estimate_cost(width, master_lr, keep_prob, settings)[1]


def test_the_estimate_is_affine_in_the_dropout_steps():
    # the flows' Heun steps depend on the horizon only: τ_n sets the dropout steps alone
    ten, twenty, forty = (seconds(master_lr=1.0 / steps) for steps in (10, 20, 40))
    assert forty - twenty == pytest.approx(2 * (twenty - ten), rel=1e-9)
    assert twenty > ten > 0


def test_the_estimate_grows_with_the_width_and_the_horizon():
    for limits in (["wgf"], ["jump-poisson"], ["critical", "penalized-wgf"]):
        by_width = [seconds(width=n, limits=limits) for n in (16, 64, 256)]
        assert by_width == sorted(by_width) and by_width[0] < by_width[-1]
        assert seconds(limits=limits, horizon=2.0) > seconds(limits=limits)


def test_the_shared_costs_of_a_cell_are_counted_once():
    """s(A) + s(B) − s(A and B) is the cell's shared part: the same for any pair of limits."""
    def shared(first, second):
        return (seconds(limits=[first]) + seconds(limits=[second])
                - seconds(limits=[first, second]))
    assert shared("wgf", "jump-poisson") == pytest.approx(shared("critical", "penalized-wgf"),
                                                          rel=1e-9)
    assert shared("wgf", "jump-poisson") > 0
    # and a limit's share does not depend on the others
    assert (seconds(limits=["wgf", "critical"]) - seconds(limits=["critical"])
            == pytest.approx(seconds(limits=["wgf", "jump-poisson"])
                             - seconds(limits=["jump-poisson"]), rel=1e-9))


def test_each_grid_time_adds_a_distance_per_limit():
    def step(limits, n_times):
        return seconds(limits=limits, n_times=n_times + 1) - seconds(limits=limits,
                                                                     n_times=n_times)
    one, two = step(["wgf"], 3), step(["wgf", "jump-poisson"], 3)
    assert step(["wgf"], 9) == pytest.approx(one, rel=1e-9)
    assert 0 < one < two < 2 * one      # the dropout loss at each time is shared


def test_w2_subsets_cost_more_than_linearly():
    def w2(points):
        return seconds(width=512, w2_particles=points)
    assert w2(400) - w2(200) > 2 * (w2(200) - w2(100)) > 0


def test_coupled_variants_add_their_neurons_to_every_step():
    def extra(coupled, master_lr):
        return seconds(master_lr=master_lr, coupled=coupled) - seconds(master_lr=master_lr)
    # gd runs every neuron, ram dropout's kept ones: at q = 1/2 about twice as many
    assert extra(("gd",), 0.01) > extra(("ram",), 0.01) > 0
    assert extra(("gd",), 0.01) == pytest.approx(5 * extra(("gd",), 0.05), rel=1e-9)


def test_the_phase_finders_cell_is_priced_by_the_same_model():
    limits = {"wgf": dict(CONSTANTS._asdict()), "jump-poisson": dict(CONSTANTS._asdict())}
    width, master_lr, keep_prob, horizon = 64, 0.05, 0.5, 1.0
    settings = CellSettings(limits, horizon, CONSTANTS, n_times=9,
                            data=(DATA.inputs, DATA.targets), w2_particles=64, dt=FLOW_DT,
                            tile_limit=True)
    # one limit particle per neuron: one call of measure_distances
    assert cell_seconds(width, master_lr, keep_prob, horizon, DATA.inputs.shape, limits,
                        limit_factor=1) == pytest.approx(
        estimate_cost(width, master_lr, keep_prob, settings)[1], rel=1e-12)


def test_a_long_cell_prints_its_estimate_unless_its_caller_announced(monkeypatch, capsys):
    from meanfield_dropout.convergence import measure_distances
    from meanfield_dropout.runtime import memory
    from phase_diagram.finder.plugin import measure_cell
    from phase_diagram.scan import build_cells, config_from_dict
    from phase_diagram.scan.cell_functions import distances_cell
    from phase_diagram.scan.runner import run_cell

    monkeypatch.setattr(memory, "ANNOUNCE_SECONDS", 0.0)   # every cell counts as long
    settings = CellSettings(["wgf"], 0.2, CONSTANTS, n_times=2, w2_particles=8,
                            data=(DATA.inputs, DATA.targets))
    measure_distances(8, 0.1, 0.5, settings, seed=0)
    estimate = memory.format_duration(estimate_cost(8, 0.1, 0.5, settings)[1])
    assert capsys.readouterr().err == (f"measure_distances at width 8: estimated {estimate} "
                                       "(a cost model's estimate, excluding compilation)\n")
    # the phase finder's and the scans' cells: their runs announce them
    measure_cell(8, 0.1, 0.5, {"wgf": {}}, 0.2, 0, (DATA.inputs, DATA.targets), n_times=2,
                 limit_factor=1)
    config = config_from_dict(dict(widths=[8, 16], repeats=1, horizon=0.2,
                                   scaling=[dict(tau="1/n", keep="0.5")],
                                   options=dict(n_times=2, w2_particles=8)))
    assert run_cell(build_cells(config)[0], distances_cell)["diverged"] is None
    assert capsys.readouterr().err == ""
