"""The cell functions a scan can run, by name (a registry, as in STUMPY or PyNNDescent).

A cell function computes one (scaling, width, repeat) cell::

    cell_function(width, master_lr, keep_prob, limits, *, alpha, beta, tau, horizon, seed,
                  **options) -> {limit: {metric: array}} or {limit: array}

where ``limits`` is ``{limit: {"alpha": α, "beta": β, "tau": τ}}`` (the constants of each
candidate limit), ``alpha, beta, tau`` are the scaling's own limit constants (``None`` when
infinite) and an optional ``"distances"`` level in the result is accepted. A run that
diverges raises :class:`~meanfield_dropout.engine.DivergenceError`; the scan records it as
such (a result with non-finite distances is recorded as a divergence too). A scan
configuration names its cell function; the default, :func:`distances_cell`, is
:func:`meanfield_dropout.convergence.measure_distances` with the cell's settings grouped
(:func:`~meanfield_dropout.convergence_plan.cell_settings`). Other module-level functions are
added with :func:`register_cell_function`, or, with an explicit opt-in (``allow_import``;
``--allow-import`` on the command line), imported from a ``"module:function"`` string.

A cell function may come with a *cost estimator* taking the same arguments and returning
``(bytes, seconds of one core)`` (for the default, :func:`distances_cost`:
:func:`meanfield_dropout.convergence.estimate_cost`): the scan checks the memory of its largest
cells and announces a long scan before it starts.
"""
import importlib

from meanfield_dropout.convergence import estimate_cost, measure_distances
from meanfield_dropout.convergence_plan import cell_settings
from meanfield_dropout.limits import LimitConstants


def distances_cell(width, master_lr, keep_prob, limits, *, alpha, beta, tau, horizon, seed,
                   limit_particles=None, **options):
    """The default cell function: :func:`~meanfield_dropout.convergence.measure_distances`
    with ``options`` the other fields of its
    :class:`~meanfield_dropout.convergence_plan.CellSettings`."""
    settings = cell_settings(limits, LimitConstants(alpha, beta, tau), horizon, options)
    return measure_distances(width, master_lr, keep_prob, settings, seed=seed,
                             limit_particles=limit_particles)


def distances_cost(width, master_lr, keep_prob, limits, *, alpha, beta, tau, horizon,
                   seed=None, limit_particles=None, **options):
    """The cost estimator of :func:`distances_cell`
    (:func:`~meanfield_dropout.convergence.estimate_cost`)."""
    settings = cell_settings(limits, LimitConstants(alpha, beta, tau), horizon, options)
    return estimate_cost(width, master_lr, keep_prob, settings,
                         limit_particles=limit_particles)


DEFAULT_CELL_FUNCTION = "measure_distances"
CELL_FUNCTIONS = {DEFAULT_CELL_FUNCTION: distances_cell}
#: Cost estimators of cell functions, keyed by the function.
COST_ESTIMATORS = {distances_cell: distances_cost}
#: The reference a cell records for a function (:func:`cell_function_reference`) when it is
#: not the function's own name: the default cells name the measurement they compute, so their
#: keys and seeds do not depend on the adapter that groups its arguments (and that reference,
#: imported, resolves to the same function).
_REFERENCES = {distances_cell: "meanfield_dropout.convergence:measure_distances"}


def register_cell_function(name, function, estimate=None):
    """Make ``function`` available to scan configurations as ``cell_function = name``.

    The function must be defined at module level (worker processes receive it by reference).
    ``estimate``, optional, is its cost estimator (see the module docstring).
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"cell function name must be a non-empty string without ':', got "
                         f"{name!r}")
    if not callable(function):
        raise ValueError(f"cell function {name!r} must be callable")
    if estimate is not None and not callable(estimate):
        raise ValueError(f"the cost estimator of cell function {name!r} must be callable")
    CELL_FUNCTIONS[name] = function
    if estimate is not None:
        COST_ESTIMATORS[function] = estimate


def check_cell_function(name, allow_import=False):
    """``name`` if it names a registered cell function, or, with ``allow_import``, has the
    form ``"module:function"`` (nothing is imported here)."""
    if isinstance(name, str) and name in CELL_FUNCTIONS:
        return name
    if isinstance(name, str) and ":" in name:
        if allow_import:
            return name
        raise ValueError(f"cell_function {name!r} is not a registered cell function "
                         f"({', '.join(CELL_FUNCTIONS)}); importing it needs --allow-import "
                         "(allow_import=True)")
    raise ValueError(f"cell_function must be one of {sorted(CELL_FUNCTIONS)} (or, with "
                     f"--allow-import, 'module:function'), got {name!r}")


def resolve_cell_function(name, allow_import=False):
    """The callable for ``name``: a registered cell function, or, with ``allow_import``, the
    function imported from ``"module:function"``."""
    check_cell_function(name, allow_import)
    if name in CELL_FUNCTIONS:
        return CELL_FUNCTIONS[name]
    for function, reference in _REFERENCES.items():
        if name == reference:
            return function
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cell function {name!r}: cannot import {module_name} ({exc})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"cell function {name!r}: {module_name} has no {attr!r}") from None


def cell_function_reference(name):
    """The ``"module:function"`` a cell records as its function: part of its identity, so the
    cell keys and seeds do not depend on the name the function is registered under."""
    if name in CELL_FUNCTIONS:
        function = CELL_FUNCTIONS[name]
        return _REFERENCES.get(function, f"{function.__module__}:{function.__qualname__}")
    return name
