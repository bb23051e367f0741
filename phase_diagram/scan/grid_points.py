"""The settings and points of a grid decision run (:mod:`phase_diagram.scan.grid`).

Points. The phase map's points (:func:`phase_diagram.finder.phase_map.map_points`): a
triangular grid u = (i, j, k)/K of the simplex (u_n > 0), three points on each theory segment
(continuous jump, penalized), the critical point and the discrete-jump vertex. Point u is the
power law τ_n = τ₀ n^(−u_τ/u_n), q_n = min(1, q₀ n^(−u_q/u_n)) with τ₀ = q₀ = ½ (q₀ < 1, so
the min never binds), whose theory phase is :func:`phase_diagram.theory.phases.classify` of
its exact exponents.

Budget. Dropout at width n runs ⌈T/τ_n⌉ steps. A point whose dropout run at a width needs
more than ``max_steps`` steps is not run there: it is *beyond the step budget* when that
happens at the first widths (it is then never run), and otherwise stops growing at the last
width that fits (its reason says so).
"""
import dataclasses

import numpy as np

from meanfield_dropout.limits import LIMITS
from meanfield_dropout.validation import check_int, check_positive

from ..finder.phase_map import KEEP0, TAU0, map_points
from ..theory.phases import classify
from .config import ScalingSpec, ScanConfig

__all__ = ["GridConfig", "QUICK", "GridPoint", "grid_points", "scan_config", "split_points",
           "CELL_FUNCTION", "BEYOND_BUDGET"]

#: Status of a point whose dropout run does not fit the step budget at the first widths.
BEYOND_BUDGET = "beyond budget"
#: Name of the grid's cell function in the scan registry (:mod:`phase_diagram.scan.grid`).
CELL_FUNCTION = "grid_distances"


@dataclasses.dataclass(frozen=True)
class GridConfig:
    """Settings of a grid decision run.

    Attributes
    ----------
    grid : int
        K, the grid divisions.
    widths : tuple of int
        Widths of the first stage (at least two).
    max_width : int
        Largest width a point may grow to (doubling from the largest of ``widths``).
    repeats : int
        Independent repeats per point and width at the first stage.
    max_repeats : int
        Most repeats per width: a point whose intervals alone block its decision doubles its
        repeats up to it (:func:`phase_diagram.scan.sequential.run_sequential`).
    min_width : int
        Smallest width: a point whose dropout explodes at every width it ran halves its
        smallest width down to it (the exploding clause needs a quiet smaller width).
    horizon : float
        T, in time units t = k τ_n.
    seed : int
    max_steps : int
        Step budget: most dropout steps T/τ_n a point may run at one width.
    target_scale : float
        The teacher–student targets are multiplied by it.
    nominal_alpha, nominal_beta : float
        Constants of the candidate limits a scaling leaves undefined.
    n_times : int
        Grid times in [0, T]; the distance of a cell is the sup over them of the predictor
        error.
    clock_coupling : bool
        The ``jump-poisson`` and ``critical`` limits take their rings from dropout's keep
        draws (:class:`meanfield_dropout.limits.DropoutClock`).
    only : tuple of str
        Labels of the points to run (default: every point of the grid).
    """

    grid: int = 8
    widths: tuple = (256, 512)
    max_width: int = 16384
    repeats: int = 3
    max_repeats: int = 12
    min_width: int = 16
    horizon: float = 2.0
    seed: int = 0
    max_steps: int = 1 << 20
    target_scale: float = 3.0
    nominal_alpha: float = 1.0
    nominal_beta: float = 1.0
    n_times: int = 5
    clock_coupling: bool = True
    only: tuple = ()

    def __post_init__(self):
        check_int(self.grid, "grid", low=2, high=40)
        widths = tuple(sorted({check_int(w, "width", low=16, high=1 << 20)
                               for w in self.widths}))
        if len(widths) < 2:
            raise ValueError("widths must hold at least two distinct widths")
        object.__setattr__(self, "widths", widths)
        check_int(self.max_width, "max_width", low=widths[-1], high=1 << 20)
        check_int(self.repeats, "repeats", low=2, high=100)
        check_int(self.max_repeats, "max_repeats", low=self.repeats, high=100)
        check_int(self.min_width, "min_width", low=16, high=widths[0])
        check_positive(self.horizon, "horizon")
        check_int(self.seed, "seed", low=0)
        check_int(self.max_steps, "max_steps", low=1)
        check_positive(self.target_scale, "target_scale")
        check_positive(self.nominal_alpha, "nominal_alpha")
        check_positive(self.nominal_beta, "nominal_beta")
        check_int(self.n_times, "n_times", low=2, high=101)
        object.__setattr__(self, "only", tuple(self.only))
        known = {p.label for p in map_points(self.grid)}
        unknown = sorted(set(self.only) - known)
        if unknown:
            raise ValueError(f"only: {unknown} are not points of a grid of {self.grid} "
                             f"divisions")

    @property
    def stage_widths(self):
        """The largest width of every possible stage: max(widths), then doublings up to
        ``max_width``."""
        out = [self.widths[-1]]
        while 2 * out[-1] <= self.max_width:
            out.append(2 * out[-1])
        return tuple(out)


#: The ``--quick`` run: a coarse grid at small widths, 5 repeats (up to 10).
QUICK = GridConfig(grid=4, widths=(64, 128), max_width=2048, repeats=5, max_repeats=10,
                   max_steps=1 << 14)


def _power(coefficient, exponent):
    """The expression c n^(−b) for an exact b ≥ 0 ("c" when b = 0)."""
    return repr(coefficient) if exponent == 0 else f"{coefficient!r}*n**(-{exponent})"


@dataclasses.dataclass(frozen=True)
class GridPoint:
    """A point of the grid: its :class:`~phase_diagram.finder.phase_map.MapPoint`, the scan
    scaling through it and its theory phase."""

    point: object
    spec: ScalingSpec
    theory: str

    def master_lr(self, width):
        """τ_n = τ₀ n^(−b_τ)."""
        return float(TAU0) * width ** -float(self.point.exponents[0])

    def steps(self, config, width):
        """Dropout steps at ``width``: the nearest integer to T/τ_n, as the cell runs."""
        return int(np.rint(config.horizon / self.master_lr(width)))

    def fits(self, config, width):
        """Whether dropout at ``width`` fits the step budget ``config.max_steps``."""
        return self.steps(config, width) <= config.max_steps


def grid_points(divisions):
    """The :class:`GridPoint` s of a grid of ``divisions``, with their theory phases."""
    out = []
    for point in map_points(divisions):
        b_tau, b_keep = point.exponents
        spec = ScalingSpec(point.label, _power(float(TAU0), b_tau),
                           _power(float(KEEP0), b_keep))
        out.append(GridPoint(point, spec, classify(spec.scaling()).phase))
    return out


def scan_config(config, points):
    """The :class:`~phase_diagram.scan.config.ScanConfig` of the first stage over ``points``."""
    return ScanConfig(
        scalings=tuple(p.spec for p in points), widths=config.widths, repeats=config.repeats,
        seed=config.seed, horizon=config.horizon, limits=LIMITS,
        nominal=dict(alpha=config.nominal_alpha, beta=config.nominal_beta),
        metric="predictor", statistic="max", cell_function=CELL_FUNCTION,
        options=dict(target_scale=config.target_scale, n_times=config.n_times,
                     clock_coupling=config.clock_coupling))


def split_points(config):
    """(points run, {label: reason} of the points beyond the step budget)."""
    run, beyond = [], {}
    for p in grid_points(config.grid):
        if config.only and p.point.label not in config.only:
            continue
        if all(p.fits(config, w) for w in config.widths):
            run.append(p)
        else:
            width = next(w for w in config.widths if not p.fits(config, w))
            beyond[p.point.label] = (f"dropout at n = {width} needs {p.steps(config, width)} "
                                     f"steps > the budget of {config.max_steps}")
    return run, beyond
