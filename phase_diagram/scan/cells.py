"""The cells of a scan: one (scaling, width, repeat) unit of work each, keyed and seeded by its
identity, with the candidate limits and their constants.

Candidate limits. A limit whose constants the scaling defines (e.g. ``critical`` when
α, β ∈ (0, ∞)) runs with those constants. The others are "wrong" limits that run with the
``nominal`` constants of the configuration (e.g. ``jump-poisson`` with α = 1 for a WGF scaling)
when these are in range, and are left out otherwise (``jump-bernoulli`` only runs for τ_∞ > 0
unless a nominal ``tau`` is given). A wrong limit's distance should not fall with n.
"""
import dataclasses
import math

from meanfield_dropout.limits import limit_constants
from meanfield_dropout.runtime.cells import cell_key, cell_seed
from meanfield_dropout.runtime.memory import check_memory

from ..theory.phases import classify
from .cell_functions import cell_function_reference
from .config import ScalingSpec


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (scaling, width, repeat) unit of work with everything the worker needs.

    Attributes
    ----------
    key : str
        Hash of the settings and root seed: the cell's file name.
    identity : dict
        The settings that define the cell (scaling expressions, width, repeat, horizon,
        limits, options, cell function).
    master_lr, keep_prob : float
        τ_n and q_n at this width.
    limits : dict
        limit → {"alpha", "beta", "tau"}: the constants each candidate limit runs with.
    constants : dict
        The scaling's own α, β, τ_∞ (None when infinite).
    seed : int
        From ``SeedSequence(root_seed, spawn_key=hash(identity))``.
    """

    key: str
    identity: dict
    scaling: ScalingSpec
    width: int
    repeat: int
    master_lr: float
    keep_prob: float
    limits: dict
    constants: dict
    seed: int


def _finite_or_none(value):
    return float(value) if value is not None and math.isfinite(value) else None


def _limit_table(limits, constants, nominal):
    """{limit: constants} of the candidate limits.

    A limit runs with the scaling's own constants when they are in its range; otherwise each
    constant outside (0, ∞) is replaced by its nominal value, if given.
    """
    own = dict(alpha=constants.alpha, beta=constants.beta, tau=constants.tau)
    mixed = {k: v if 0.0 < v < math.inf else nominal.get(k, v) for k, v in own.items()}
    table = {}
    for limit in limits:
        for values in (own, mixed):
            try:
                table[limit] = limit_constants(limit, **values)
            except ValueError:          # a constant out of this limit's range
                continue
            break
    return table


#: Memory a scan holds per cell (the cell, its task, future and manifest entry), measured at
#: about 1.4 KiB for the cell alone.
BYTES_PER_CELL = 4096


def build_cells(config):
    """Every :class:`Cell` of the scan, in (scaling, width, repeat) order.

    Raises
    ------
    ValueError
        For a scaling whose limit constants are undetermined.
    MemoryLimitError
        When the cells alone would not fit in memory (e.g. ``repeats = 1000000000``); the
        count is checked before any cell is built.
    """
    count = len(config.scalings) * len(config.widths) * config.repeats
    check_memory(count * BYTES_PER_CELL,
                 f"the {count} cells of the scan ({len(config.scalings)} scalings x "
                 f"{len(config.widths)} widths x {config.repeats} repeats)",
                 "use fewer repeats, widths or scalings")
    cells = []
    for spec in config.scalings:
        scaling = spec.scaling()
        regime = classify(scaling)
        c = regime.constants
        if not c.determined:
            raise ValueError(f"scaling {spec.name!r}: {regime.reason}")
        limits = _limit_table(config.limits, c, config.nominal)
        if not limits:
            raise ValueError(f"scaling {spec.name!r}: none of the limits {config.limits} is "
                             f"defined for alpha={c.alpha}, beta={c.beta}, tau={c.tau}")
        constants = dict(alpha=_finite_or_none(c.alpha), beta=_finite_or_none(c.beta),
                         tau=_finite_or_none(c.tau))
        for width in config.widths:
            for repeat in range(config.repeats):
                identity = dict(tau=spec.tau, keep=spec.keep, width=width, repeat=repeat,
                                horizon=config.horizon, limits=limits,
                                options=config.options,
                                cell_function=cell_function_reference(config.cell_function))
                cells.append(Cell(
                    key=cell_key(identity, config.seed), identity=identity, scaling=spec,
                    width=width, repeat=repeat,
                    master_lr=scaling.tau(width), keep_prob=scaling.keep(width),
                    limits=limits, constants=constants,
                    seed=cell_seed(config.seed, identity)))
    return cells
