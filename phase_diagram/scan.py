"""Empirical phase-diagram scans: scalings × widths × repeats, resumable and parallel.

For every cell (scaling, width n, repeat r) a *cell function* runs dropout at width n with
(τ_n, q_n) and the candidate limit dynamics, and returns the distance between them for each
limit. The default cell function is ``meanfield_dropout.convergence:measure_distances``; any
module-level function with the same signature can be used instead (given as
``"module:function"``)::

    cell_function(width, master_lr, keep_prob, limits, *, alpha, beta, tau, horizon, seed,
                  **options) -> {limit: {metric: array}} or {limit: array}

where ``limits`` is ``{limit: {"alpha": α, "beta": β, "tau": τ}}`` (the constants of each
candidate limit), ``alpha, beta, tau`` are the scaling's own limit constants (``None`` when
infinite) and an optional ``"distances"`` level in the result is accepted.

Candidate limits. A limit whose constants the scaling defines (e.g. ``critical`` when
α, β ∈ (0, ∞)) runs with those constants. The others are "wrong" limits that run with the
``nominal`` constants of the configuration (e.g. ``jump-poisson`` with α = 1 for a WGF scaling)
when these are in range, and are left out otherwise (``jump-bernoulli`` only runs for τ_∞ > 0
unless a nominal ``tau`` is given). A wrong limit's distance should not fall with n.

Guarantees
----------
* One JSON file per cell, ``DIR/cells/<key>.json``, where ``key`` hashes the cell's settings;
  it is written atomically (temporary file + ``os.replace``). A rerun skips finished cells, so
  a killed scan resumes with nothing lost and no finished cell computed twice.
* Each cell's seed comes from ``np.random.SeedSequence(root_seed, spawn_key=...)`` keyed by the
  cell's identity, so numbers do not depend on the worker count, the order or the backend
  (local process pool or Dask).

The empirical phase of a scaling is the candidate limit whose distance falls with n (fitted
log–log slope below ``-slope_threshold``) and is smallest at the largest width; repeats give the
spread of the slopes and the confidence (the fraction of repeats that reach the same decision).
"""
import dataclasses
import hashlib
import importlib
import json
import math
import multiprocessing
import os
import tempfile
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numba
import numpy as np

from meanfield_dropout._validate import check_choice, check_int, check_positive, check_real
from meanfield_dropout.engine import DivergenceError
from meanfield_dropout.parallel import init_worker
from meanfield_dropout.stats import loglog_fit

from .regimes import DEGENERATE, PHASES, classify, limit_constraints
from .scalings import parse_scaling

__all__ = [
    "DEFAULT_CELL_FUNCTION", "ScanConfig", "ScalingSpec", "Cell", "Decision", "ScalingResult",
    "load_config", "config_from_dict", "build_cells", "resolve_cell_function", "run_scan",
    "run_cell", "load_records", "decide_phase", "summarize",
]

DEFAULT_CELL_FUNCTION = "meanfield_dropout.convergence:measure_distances"
STATISTICS = ("max", "final")
_TOP_KEYS = {"seed", "widths", "repeats", "horizon", "limits", "nominal", "metric", "statistic",
             "slope_threshold", "cell_function", "options", "scaling"}
_CONSTANT_KEYS = {"alpha", "beta", "tau"}
_SCALING_KEYS = {"name", "tau", "keep", "exponents", "point", "tau0", "keep0"}


@dataclasses.dataclass(frozen=True)
class ScalingSpec:
    """One scaling of a scan as a pair of expressions in n (see :func:`parse_scaling`)."""

    name: str
    tau: str
    keep: str

    def scaling(self):
        """The parsed :class:`~phase_diagram.scalings.Scaling`."""
        return parse_scaling(self.tau, self.keep)


@dataclasses.dataclass(frozen=True)
class ScanConfig:
    """A scan: scalings × widths × repeats (see ``examples/phase_scan.toml`` for the format).

    Attributes
    ----------
    scalings : tuple of ScalingSpec
    widths : tuple of int
        Widths n (≥ 1, at least two distinct values to fit slopes).
    repeats : int
        Independent repeats per (scaling, width).
    seed : int
        Root seed of the :class:`numpy.random.SeedSequence` of every cell.
    horizon : float
        Time horizon T of the compared dynamics (continuous time t = kτ_n; passed to the cell
        function).
    limits : tuple of str
        Candidate limits; each scaling uses those whose constants are in range
        (:func:`~phase_diagram.regimes.limit_constraints`), with its own or the nominal
        constants.
    nominal : dict
        Constants (``alpha``, ``beta``, ``tau``) for candidate limits the scaling's own
        constants leave undefined; empty: such limits are left out.
    metric : str
        Which distance of a nested cell result to use (``measure_distances`` returns
        ``predictor`` and ``w2`` per limit); ignored for flat results.
    statistic : str
        Reduction of a distance-vs-time array to one number: ``"max"`` (sup over [0, T],
        path-space distance) or ``"final"`` (at T).
    slope_threshold : float
        A distance "falls with n" when its fitted log–log slope is below ``-slope_threshold``.
    cell_function : str
        ``"module:function"`` of the cell function.
    options : dict
        Extra keyword options for the cell function (part of each cell's identity).
    """

    scalings: tuple
    widths: tuple
    repeats: int = 3
    seed: int = 0
    horizon: float = 1.0
    limits: tuple = PHASES
    nominal: dict = dataclasses.field(default_factory=dict)
    metric: str = "predictor"
    statistic: str = "max"
    slope_threshold: float = 0.15
    cell_function: str = DEFAULT_CELL_FUNCTION
    options: dict = dataclasses.field(default_factory=dict)


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


def _reject_unknown(table, allowed, where):
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}")


def _format_exponent(value):
    return repr(float(round(value, 10)))


def _scaling_spec(entry, index):
    """A :class:`ScalingSpec` from one ``[[scaling]]`` table."""
    where = f"scaling #{index + 1}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a table")
    _reject_unknown(entry, _SCALING_KEYS, where)
    forms = [key for key in ("tau", "exponents", "point") if key in entry]
    if len(forms) != 1:
        raise ValueError(f"{where} needs exactly one of tau/keep, exponents or point")
    if forms == ["tau"]:
        if "keep" not in entry or {"tau0", "keep0"} & set(entry):
            raise ValueError(f"{where}: tau needs keep (and no tau0/keep0)")
        tau, keep = entry["tau"], entry["keep"]
    else:
        if "keep" in entry:
            raise ValueError(f"{where}: keep is only used together with tau")
        tau0 = check_positive(entry.get("tau0", 1.0), f"{where} tau0")
        keep0 = check_positive(entry.get("keep0", 1.0), f"{where} keep0")
        if forms == ["exponents"]:
            pair = entry["exponents"]
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError(f"{where}: exponents must be [b_tau, b_q]")
            b_tau, b_keep = (check_real(b, f"{where} exponent") for b in pair)
        else:
            point = entry["point"]
            if not isinstance(point, list) or len(point) != 3:
                raise ValueError(f"{where}: point must be [u_n, u_tau, u_q]")
            u = [check_real(x, f"{where} point") for x in point]
            if min(u) < 0 or not math.isclose(sum(u), 1.0, abs_tol=1e-9) or u[0] <= 0:
                raise ValueError(f"{where}: point must be barycentric (>= 0, sum 1) with u_n > 0")
            # τ_n = τ₀ n^(−u_τ/u_n), q_n = q₀ n^(−u_q/u_n) has simplex limit u.
            b_tau, b_keep = u[1] / u[0], u[2] / u[0]
        tau = f"{tau0!r}*n**({_format_exponent(-b_tau)})"
        keep = f"{keep0!r}*n**({_format_exponent(-b_keep)})"
    if not isinstance(tau, str) or not isinstance(keep, str):
        raise ValueError(f"{where}: tau and keep must be strings")
    spec = ScalingSpec(name=str(entry.get("name", f"τ={tau}, q={keep}")), tau=tau, keep=keep)
    spec.scaling()        # malformed expressions fail at load time
    return spec


def config_from_dict(data):
    """Validate a scan configuration (a dict as read from TOML) into a :class:`ScanConfig`."""
    if not isinstance(data, dict):
        raise ValueError("scan configuration must be a table")
    _reject_unknown(data, _TOP_KEYS, "scan configuration")
    entries = data.get("scaling", [])
    if not isinstance(entries, list) or not entries:
        raise ValueError("scan configuration needs at least one [[scaling]] table")
    scalings = tuple(_scaling_spec(entry, i) for i, entry in enumerate(entries))
    if len({(s.tau, s.keep) for s in scalings}) != len(scalings):
        raise ValueError("scan configuration lists the same scaling twice")
    widths = data.get("widths")
    if not isinstance(widths, list) or not widths:
        raise ValueError("widths must be a non-empty list of integers >= 1")
    widths = tuple(sorted({check_int(w, "width", low=1) for w in widths}))
    if len(widths) < 2:
        raise ValueError("widths needs at least two distinct values to fit slopes")
    limits = data.get("limits", list(PHASES))
    if not isinstance(limits, list) or not limits:
        raise ValueError("limits must be a non-empty list")
    limits = tuple(check_choice(limit, "limit", PHASES) for limit in limits)
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise ValueError("options must be a table")
    try:
        json.dumps(options)        # options are part of each cell's hash
    except TypeError as exc:
        raise ValueError(f"options must hold numbers, strings, booleans, lists and tables "
                         f"only: {exc}") from None
    nominal = data.get("nominal", {})
    if not isinstance(nominal, dict):
        raise ValueError("nominal must be a table of alpha, beta, tau")
    _reject_unknown(nominal, _CONSTANT_KEYS, "nominal")
    nominal = {k: check_positive(v, f"nominal {k}") for k, v in sorted(nominal.items())}
    metric = data.get("metric", "predictor")
    if not isinstance(metric, str) or not metric:
        raise ValueError("metric must be a non-empty string")
    cell_function = data.get("cell_function", DEFAULT_CELL_FUNCTION)
    if not isinstance(cell_function, str) or ":" not in cell_function:
        raise ValueError("cell_function must be a 'module:function' string")
    return ScanConfig(
        scalings=scalings, widths=widths,
        repeats=check_int(data.get("repeats", 3), "repeats", low=1),
        seed=check_int(data.get("seed", 0), "seed", low=0),
        horizon=check_positive(data.get("horizon", 1.0), "horizon"),
        limits=limits, nominal=nominal, metric=metric,
        statistic=check_choice(data.get("statistic", "max"), "statistic", STATISTICS),
        slope_threshold=check_positive(data.get("slope_threshold", 0.15), "slope_threshold"),
        cell_function=cell_function, options=options)


def load_config(path):
    """Read and validate a TOML scan configuration file."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ValueError(f"cannot read scan configuration {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"malformed TOML in {path}: {exc}") from None
    return config_from_dict(data)


def _finite_or_none(value):
    return float(value) if value is not None and math.isfinite(value) else None


def _cell_seed(root_seed, identity):
    """A 64-bit seed from SeedSequence(root_seed) keyed by the cell identity (not by order)."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).digest()
    spawn_key = tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))
    state = np.random.SeedSequence(root_seed, spawn_key=spawn_key).generate_state(2, np.uint32)
    return int(state[0]) | (int(state[1]) << 32)


#: Constants each limit uses (the others are recorded as 0, as meanfield_dropout.limits does).
_USED_CONSTANTS = {"wgf": (), "penalized-wgf": ("beta",), "jump-poisson": ("alpha",),
                   "jump-bernoulli": ("alpha", "tau"), "critical": ("alpha", "beta")}


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
            if limit_constraints(limit, **values):
                table[limit] = {k: float(values[k]) if k in _USED_CONSTANTS[limit] else 0.0
                                for k in ("alpha", "beta", "tau")}
                break
    return table


def build_cells(config):
    """Every :class:`Cell` of the scan, in (scaling, width, repeat) order.

    Raises ``ValueError`` for a scaling whose limit constants are undetermined.
    """
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
                                options=config.options, cell_function=config.cell_function)
                key_source = json.dumps(dict(identity, seed=config.seed), sort_keys=True)
                cells.append(Cell(
                    key=hashlib.sha256(key_source.encode()).hexdigest()[:24],
                    identity=identity, scaling=spec, width=width, repeat=repeat,
                    master_lr=scaling.tau(width), keep_prob=scaling.keep(width),
                    limits=limits, constants=constants,
                    seed=_cell_seed(config.seed, identity)))
    return cells


def resolve_cell_function(ref):
    """The callable named by ``"module:function"``."""
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cell function {ref!r}: cannot import {module_name} ({exc})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"cell function {ref!r}: {module_name} has no {attr!r}") from None


def _cell_path(out_dir, key):
    return Path(out_dir) / "cells" / f"{key}.json"


def _write_json_atomic(path, data):
    """Write ``data`` as JSON to ``path`` via a temporary file in the same directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_record(path):
    """A finished cell record, or ``None`` if the file is missing or unreadable."""
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "distances" in record else None


def run_cell(cell, out_dir):
    """Compute one cell, write its record atomically to ``DIR/cells/<key>.json`` and return it.

    The record holds the settings, (τ_n, q_n), the constants, the seed and, for each limit,
    the distance array returned by the cell function.
    """
    function = resolve_cell_function(cell.identity["cell_function"])
    # One active Numba thread also on Dask workers (the setting is per calling thread).
    numba.set_num_threads(1)
    start = time.perf_counter()
    try:
        result = function(cell.width, cell.master_lr, cell.keep_prob,
                          {lim: dict(c) for lim, c in cell.limits.items()},
                          horizon=cell.identity["horizon"], seed=cell.seed,
                          **cell.constants, **cell.identity["options"])
    except DivergenceError as exc:
        # A diverging run is a result (typical of degenerate scalings): infinite distances.
        result, diverged = {lim: math.inf for lim in cell.limits}, str(exc)
    else:
        diverged = None
    distances = result.get("distances", result) if isinstance(result, dict) else None
    if not isinstance(distances, dict) or set(cell.limits) - set(distances):
        raise RuntimeError(f"cell function {cell.identity['cell_function']} did not return a "
                           f"distance for every limit in {list(cell.limits)}")
    record = dict(
        key=cell.key, identity=cell.identity, name=cell.scaling.name,
        master_lr=cell.master_lr, keep_prob=cell.keep_prob, constants=cell.constants,
        seed=cell.seed, elapsed=time.perf_counter() - start, diverged=diverged,
        distances={lim: _distance_lists(distances[lim]) for lim in cell.limits})
    _write_json_atomic(_cell_path(out_dir, cell.key), record)
    return record


def _distance_lists(value):
    """A cell function's distances for one limit as JSON lists: {metric: list} or a list."""
    if isinstance(value, dict):
        return {k: np.atleast_1d(np.asarray(v, dtype=float)).tolist() for k, v in value.items()
                if isinstance(v, (list, tuple, np.ndarray))}
    return np.atleast_1d(np.asarray(value, dtype=float)).tolist()


def _progress(total, initial, enabled):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, unit="cell", desc="scan", disable=not enabled)


def _collect(futures, out_dir, bar, cancel):
    """Wait for cell futures; store any record the worker could not write; stop on failure.

    On a failure the pending cells are cancelled (``cancel``) and the error is re-raised;
    cells already running still finish and write their files.
    """
    for future in futures:
        try:
            record = future.result()
        except BaseException:
            cancel()
            raise
        path = _cell_path(out_dir, record["key"])
        if not path.exists():            # remote workers without a shared file system
            _write_json_atomic(path, record)
        bar.update(1)


def _run_pool(cells, out_dir, workers, bar):
    # Spawned workers: forking a process whose Numba threads already run (e.g. after a Dask
    # run with processes=False, or in a notebook) crashes parallel kernels in the children.
    with ProcessPoolExecutor(max_workers=workers, initializer=init_worker,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_cell, cell, str(out_dir)) for cell in cells]
        _collect(as_completed(futures), out_dir, bar,
                 lambda: pool.shutdown(wait=False, cancel_futures=True))


def _run_dask(cells, out_dir, address, workers, bar):
    """Run cells on ``dask.distributed``: a scheduler ``address``, or "local" for a
    LocalCluster of ``workers`` (default 2) single-threaded worker processes."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed as dask_as_completed
    except ImportError:
        raise RuntimeError("dask.distributed is not installed: pip install -e .[distributed]") \
            from None
    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    try:
        client = Client(cluster if cluster is not None else address)
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise ValueError(f"dask: cannot connect to the scheduler {address!r}: {exc}") from None
    try:
        futures = [client.submit(run_cell, cell, str(out_dir), pure=False, key=f"cell-{cell.key}")
                   for cell in cells]
        _collect(dask_as_completed(futures), out_dir, bar, lambda: client.cancel(futures))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_scan(config, out_dir, *, workers=None, dask=None, progress=True):
    """Run (or resume) a scan; finished cells are skipped.

    Parameters
    ----------
    config : ScanConfig
    out_dir : str or Path
        Output directory: ``manifest.json`` and ``cells/<key>.json``.
    workers : int, optional
        Worker processes (default: ``os.cpu_count()``).
    dask : str, optional
        ``None`` for the local process pool, ``"local"`` for a ``dask.distributed.LocalCluster``
        with ``workers`` single-threaded worker processes, or a scheduler address (``workers``
        is then ignored: the cluster decides). Remote workers without access to ``out_dir``
        return their records, which are then written locally.
    progress : bool
        Show a tqdm bar counting finished cells.

    Returns
    -------
    dict
        ``total``, ``skipped`` (already finished) and ``computed`` cell counts.
    """
    if workers is not None:
        workers = check_int(workers, "workers", low=1)
    out_dir = Path(out_dir)
    cells = build_cells(config)
    _write_json_atomic(out_dir / "manifest.json",
                       dict(config=_config_to_dict(config), cells=[c.key for c in cells]))
    pending = [c for c in cells if _read_record(_cell_path(out_dir, c.key)) is None]
    with _progress(len(cells), len(cells) - len(pending), progress) as bar:
        if pending and dask is None:
            _run_pool(pending, out_dir, workers, bar)
        elif pending:
            _run_dask(pending, out_dir, dask, workers, bar)
    return dict(total=len(cells), skipped=len(cells) - len(pending), computed=len(pending))


def _config_to_dict(config):
    data = dataclasses.asdict(config)
    data["scaling"] = data.pop("scalings")      # asdict already turned them into dicts
    return data


def load_records(out_dir):
    """The scan configuration and the finished cell records of ``out_dir``.

    Returns
    -------
    config : ScanConfig
    records : list of dict
        Only cells listed in the manifest (the latest scan written to ``out_dir``).
    missing : int
        Number of listed cells without a finished record.
    """
    out_dir = Path(out_dir)
    manifest = _read_manifest(out_dir)
    data = manifest["config"]
    data["scaling"] = [dict(name=s["name"], tau=s["tau"], keep=s["keep"])
                       for s in data["scaling"]]
    data["widths"], data["limits"] = list(data["widths"]), list(data["limits"])
    config = config_from_dict(data)
    records, missing = [], 0
    for key in manifest["cells"]:
        record = _read_record(_cell_path(out_dir, key))
        if record is None:
            missing += 1
        else:
            records.append(record)
    return config, records, missing


def _read_manifest(out_dir):
    try:
        with open(out_dir / "manifest.json") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise ValueError(f"{out_dir} holds no scan (no manifest.json)") from None
    except ValueError as exc:
        raise ValueError(f"{out_dir}/manifest.json is unreadable: {exc}") from None


@dataclasses.dataclass(frozen=True)
class Decision:
    """The empirical phase of one scaling.

    Attributes
    ----------
    phase : str
        The limit whose distance falls with n and is smallest at the largest width, or
        ``"degenerate"`` when no distance falls.
    confidence : float
        Fraction of repeats whose own curves give the same phase.
    slopes : dict
        limit → (mean, std) over repeats of the fitted log–log slope of distance vs width.
    """

    phase: str
    confidence: float
    slopes: dict


def _decide_one(widths, distances, threshold):
    """(phase, slopes) from positive distances {limit: array over widths}."""
    # A diverged cell (infinite distance) makes its limit "not falling" (slope +inf).
    slopes = {lim: loglog_fit(widths, d)[0] if np.isfinite(d).all() else math.inf
              for lim, d in distances.items()}
    falling = [lim for lim, s in slopes.items() if s < -threshold]
    if not falling:
        return DEGENERATE, slopes
    return min(falling, key=lambda lim: distances[lim][-1]), slopes


def decide_phase(widths, distances, slope_threshold=0.15):
    """Decide the empirical phase from distances to each candidate limit.

    Parameters
    ----------
    widths : array_like, shape (W,)
        Widths n (increasing).
    distances : dict
        limit → array of shape (R, W): the distance (one number per cell) for each repeat and
        width.
    slope_threshold : float
        A log–log slope below ``-slope_threshold`` counts as "falls with n".

    Returns
    -------
    Decision
        The phase decided on the geometric mean over repeats, with the per-repeat agreement as
        confidence and the per-limit slope mean and spread.
    """
    widths = np.asarray(widths, dtype=float)
    clipped = {lim: np.maximum(np.asarray(d, dtype=float), 1e-300)
               for lim, d in distances.items()}
    phase, _ = _decide_one(widths, {lim: np.exp(np.log(d).mean(axis=0))
                                    for lim, d in clipped.items()}, slope_threshold)
    n_repeats = next(iter(clipped.values())).shape[0]
    per_repeat = [_decide_one(widths, {lim: d[r] for lim, d in clipped.items()},
                              slope_threshold) for r in range(n_repeats)]
    confidence = sum(p == phase for p, _ in per_repeat) / n_repeats
    slopes = {lim: (float(np.mean([s[lim] for _, s in per_repeat])),
                    float(np.std([s[lim] for _, s in per_repeat])))
              for lim in distances}
    return Decision(phase, confidence, slopes)


@dataclasses.dataclass(frozen=True)
class ScalingResult:
    """Theory vs experiment for one scaling of a scan.

    Attributes
    ----------
    spec : ScalingSpec
    regime : Regime
        The theoretical phase and constants.
    decision : Decision or None
        The empirical phase (None with fewer than two finished widths).
    widths : tuple of int
        Widths with every repeat finished.
    distances : dict
        limit → array (repeats, widths) of per-cell distances.
    """

    spec: ScalingSpec
    regime: object
    decision: Decision | None
    widths: tuple
    distances: dict

    @property
    def agrees(self):
        """True when the detected phase equals the theoretical one (None if not decided)."""
        return None if self.decision is None else self.decision.phase == self.regime.phase


def _reduce(series, metric, statistic):
    """One number per cell: the ``statistic`` of the ``metric`` series (inf if diverged)."""
    if isinstance(series, dict):
        if metric not in series:
            raise ValueError(f"cell results have no metric {metric!r}; found {sorted(series)}")
        series = series[metric]
    series = np.asarray(series, dtype=float)
    return float(series.max() if statistic == "max" else series[-1])


def summarize(out_dir):
    """Per-scaling theory vs empirical phase of a (possibly unfinished) scan.

    A scaling uses the widths whose repeats are all finished and gets a :class:`Decision` when
    there are at least two; each cell's distance series is reduced to one number with the
    configured metric and statistic.

    Returns
    -------
    config : ScanConfig
    results : list of ScalingResult
    missing : int
        Cells of the manifest not finished yet.
    """
    config, records, missing = load_records(out_dir)
    by_cell = {(r["identity"]["tau"], r["identity"]["keep"], r["identity"]["width"],
                r["identity"]["repeat"]): r for r in records}
    results = []
    for spec in config.scalings:
        regime = classify(spec.scaling())
        widths = [w for w in config.widths
                  if all((spec.tau, spec.keep, w, r) in by_cell for r in range(config.repeats))]
        distances = {}
        if widths:
            limits = by_cell[(spec.tau, spec.keep, widths[0], 0)]["identity"]["limits"]
            distances = {lim: np.array([[_reduce(by_cell[(spec.tau, spec.keep, w, r)]
                                                 ["distances"][lim], config.metric,
                                                 config.statistic)
                                         for w in widths] for r in range(config.repeats)])
                         for lim in limits}
        decision = (decide_phase(widths, distances, config.slope_threshold)
                    if len(widths) >= 2 else None)
        results.append(ScalingResult(spec, regime, decision, tuple(widths), distances))
    return config, results, missing
