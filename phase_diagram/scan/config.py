"""Scan configurations: the TOML format of ``examples/phase_scan.toml``, validated once.

:func:`load_config` reads a file, :func:`config_from_dict` a table; both give a frozen
:class:`ScanConfig` of :class:`ScalingSpec` entries, or a one-line ``ValueError`` naming the key.
"""
import dataclasses
import json
import math
import tomllib
from pathlib import Path

from meanfield_dropout.validation import (check_choice, check_data_file, check_int,
                                         check_positive, check_real)
from meanfield_dropout.convergence import METRICS
from meanfield_dropout.limits import LIMITS

from ..theory.scalings import parse_scaling
from .cell_functions import DEFAULT_CELL_FUNCTION, check_cell_function

STATISTICS = ("max", "final")
#: Most widths in a scan.
MAX_WIDTHS = 64

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
        """The parsed :class:`~phase_diagram.theory.scalings.Scaling`."""
        return parse_scaling(self.tau, self.keep)


@dataclasses.dataclass(frozen=True)
class ScanConfig:
    """A scan: scalings × widths × repeats (see ``examples/phase_scan.toml`` for the format).

    Attributes
    ----------
    scalings : tuple of ScalingSpec
    widths : tuple of int
        Widths n (≥ 1, at least two distinct values to fit slopes, at most
        :data:`MAX_WIDTHS`); the keep probability q_n must be at most 1 at each of them.
    repeats : int
        Independent repeats per (scaling, width).
    seed : int
        Root seed of the :class:`numpy.random.SeedSequence` of every cell.
    horizon : float
        Time horizon T of the compared dynamics (continuous time t = kτ_n; passed to the cell
        function).
    limits : tuple of str
        Candidate limits; each scaling uses those whose constants are in range
        (:func:`~meanfield_dropout.limits.limit_constants`), with its own or the nominal
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
        Name of a registered cell function (:mod:`phase_diagram.scan.cell_functions`), or a
        ``"module:function"`` to import (only with ``allow_import``).
    options : dict
        Extra keyword options for the cell function (part of each cell's identity).
    """

    scalings: tuple
    widths: tuple
    repeats: int = 3
    seed: int = 0
    horizon: float = 1.0
    limits: tuple = LIMITS
    nominal: dict = dataclasses.field(default_factory=dict)
    metric: str = "predictor"
    statistic: str = "max"
    slope_threshold: float = 0.15
    cell_function: str = DEFAULT_CELL_FUNCTION
    options: dict = dataclasses.field(default_factory=dict)


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


def config_from_dict(data, *, allow_import=False):
    """Validate a scan configuration (a dict as read from TOML) into a :class:`ScanConfig`.

    ``allow_import`` admits a ``cell_function`` given as ``"module:function"`` (imported when
    the scan runs); otherwise it must name a registered cell function.
    """
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
    if len(widths) > MAX_WIDTHS:
        raise ValueError(f"widths lists {len(widths)} widths; a scan takes at most "
                         f"{MAX_WIDTHS}")
    widths = tuple(sorted({check_int(w, "width", low=1) for w in widths}))
    if len(widths) < 2:
        raise ValueError("widths needs at least two distinct values to fit slopes")
    for index, spec in enumerate(scalings):
        keep = spec.scaling().keep_expression
        above = [width for width in widths if keep(width) > 1]
        if above:
            raise ValueError(f"scaling #{index + 1}: keep q_n = {keep.text} is "
                             f"{keep(above[0]):.4g} at n={above[0]}, above 1 (a keep "
                             f"probability is at most 1 at every width of the scan)")
    limits = data.get("limits", list(LIMITS))
    if not isinstance(limits, list) or not limits:
        raise ValueError("limits must be a non-empty list")
    limits = tuple(check_choice(limit, "limit", LIMITS) for limit in limits)
    if len(set(limits)) < len(limits):
        raise ValueError(f"limits must name each limit once, got {list(limits)}")
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
    cell_function = check_cell_function(data.get("cell_function", DEFAULT_CELL_FUNCTION),
                                        allow_import)
    if cell_function == DEFAULT_CELL_FUNCTION:
        check_choice(metric, "metric", METRICS)
    return ScanConfig(
        scalings=scalings, widths=widths,
        repeats=check_int(data.get("repeats", 3), "repeats", low=1),
        seed=check_int(data.get("seed", 0), "seed", low=0),
        horizon=check_positive(data.get("horizon", 1.0), "horizon"),
        limits=limits, nominal=nominal, metric=metric,
        statistic=check_choice(data.get("statistic", "max"), "statistic", STATISTICS),
        slope_threshold=check_positive(data.get("slope_threshold", 0.15), "slope_threshold"),
        cell_function=cell_function, options=options)


def read_toml(path):
    """The table of a TOML file (ValueError naming the file if unreadable or malformed)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        check_data_file(path, "scan configuration", max_bytes=1 << 20)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except IsADirectoryError:
        raise ValueError(f"scan configuration {path} is a directory, not a TOML file") \
            from None
    except OSError as exc:
        raise ValueError(f"cannot read scan configuration {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"scan configuration {path} is not a UTF-8 text (TOML) file: byte "
                         f"{exc.start} is {exc.object[exc.start:exc.start + 1]!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"malformed TOML in {path}: {exc}") from None


def load_config(path, *, allow_import=False):
    """Read and validate a TOML scan configuration file (``allow_import`` as in
    :func:`config_from_dict`)."""
    return config_from_dict(read_toml(path), allow_import=allow_import)
