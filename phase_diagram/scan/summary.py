"""Read a scan back and decide the empirical phase of each scaling.

The empirical phase of a scaling is the candidate limit whose distance falls with n (fitted
log–log slope below ``-slope_threshold``) and is smallest at the largest width; repeats give the
spread of the slopes and the confidence (the fraction of repeats that reach the same decision).
A scaling with a diverged cell (a run left its divergence bounds: its record holds a
divergence report, not distances) is detected as :data:`DIVERGED`, never decided from
distances.
"""
import dataclasses
import math
from pathlib import Path

import numpy as np

from meanfield_dropout.stats import loglog_fit

from ..regimes import DEGENERATE, classify
from .cells import build_cells
from .config import ScalingSpec, config_from_dict
from .records import cell_path, check_records, read_manifest, read_record

#: The detected phase of a scaling with a diverged cell.
DIVERGED = "diverged"


def _manifest_config(out_dir, manifest):
    """The :class:`ScanConfig` stored in a manifest (ValueError naming the file if invalid)."""
    path = Path(out_dir) / "manifest.json"
    data = dict(manifest["config"])
    try:
        data["scaling"] = [dict(name=s["name"], tau=s["tau"], keep=s["keep"])
                           for s in data["scaling"]]
        data["widths"], data["limits"] = list(data["widths"]), list(data["limits"])
        # the manifest's own cell function: validated by form, nothing is imported
        return config_from_dict(data, allow_import=True)
    except KeyError as exc:
        raise ValueError(f"{path}: malformed config (no {exc} entry)") from None
    except TypeError as exc:
        raise ValueError(f"{path}: malformed config ({exc})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: invalid config: {exc}") from None


def load_records(out_dir):
    """The scan configuration, its cells and their valid records in ``out_dir``.

    Every record is validated against its cell (key, identity, seed, schema:
    :func:`~phase_diagram.scan.records.record_problem`); invalid ones are left out with a
    warning and counted as missing (the next scan recomputes them).

    Returns
    -------
    config : ScanConfig
    records : list of dict
        The valid records of the cells of the manifest (the latest scan written to
        ``out_dir``), finished or diverged.
    missing : int
        Number of cells without a valid record.
    """
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    config = _manifest_config(out_dir, manifest)
    cells = build_cells(config)
    if [c.key for c in cells] != manifest["cells"]:
        raise ValueError(f"{out_dir / 'manifest.json'} lists other cells than its config "
                         "defines (edited, or written by another version); rerun the scan")
    problems = check_records(out_dir, cells, "are left out")
    records = [read_record(cell_path(out_dir, c.key)) for c in cells if c.key not in problems]
    return config, records, len(problems)


@dataclasses.dataclass(frozen=True)
class Decision:
    """The empirical phase of one scaling.

    Attributes
    ----------
    phase : str
        The limit whose distance falls with n and is smallest at the largest width,
        ``"degenerate"`` when no distance falls, or :data:`DIVERGED` when a cell diverged.
    confidence : float
        Fraction of repeats whose own curves give the same phase (for :data:`DIVERGED`: the
        fraction of repeats with a diverged cell).
    slopes : dict
        limit → (mean, std) over repeats of the fitted log–log slope of distance vs width
        (over the repeats without a diverged cell; NaN if there is none).
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


def decide_phase(widths, distances, slope_threshold=0.15, diverged=None):
    """Decide the empirical phase from distances to each candidate limit.

    Parameters
    ----------
    widths : array_like, shape (W,)
        Widths n (increasing).
    distances : dict
        limit → array of shape (R, W): the distance (one number per cell) for each repeat and
        width (NaN where the cell diverged).
    slope_threshold : float
        A log–log slope below ``-slope_threshold`` counts as "falls with n".
    diverged : array_like of bool, shape (R, W), optional
        Cells that diverged. Any divergence makes the phase :data:`DIVERGED`.

    Returns
    -------
    Decision
        The phase decided on the geometric mean over repeats, with the per-repeat agreement as
        confidence and the per-limit slope mean and spread.
    """
    widths = np.asarray(widths, dtype=float)
    clipped = {lim: np.maximum(np.asarray(d, dtype=float), 1e-300)
               for lim, d in distances.items()}
    n_repeats = next(iter(clipped.values())).shape[0]
    diverged = (np.zeros((n_repeats, widths.size), dtype=bool) if diverged is None
                else np.asarray(diverged, dtype=bool))
    ran = ~diverged.any(axis=1)                 # repeats without a diverged cell
    per_repeat = [_decide_one(widths, {lim: d[r] for lim, d in clipped.items()},
                              slope_threshold) for r in np.flatnonzero(ran)]
    slopes = {lim: (float(np.mean([s[lim] for _, s in per_repeat])) if per_repeat else math.nan,
                    float(np.std([s[lim] for _, s in per_repeat])) if per_repeat else math.nan)
              for lim in distances}
    if not ran.all():
        return Decision(DIVERGED, float(np.mean(~ran)), slopes)
    phase, _ = _decide_one(widths, {lim: np.exp(np.log(d).mean(axis=0))
                                    for lim, d in clipped.items()}, slope_threshold)
    confidence = sum(p == phase for p, _ in per_repeat) / n_repeats
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
        Widths with every repeat finished (or diverged).
    distances : dict
        limit → array (repeats, widths) of per-cell distances (NaN where a cell diverged).
    diverged : tuple of dict
        The divergence reports of its diverged cells: ``width``, ``repeat``, ``step``,
        ``variant`` and ``message``.
    """

    spec: ScalingSpec
    regime: object
    decision: Decision | None
    widths: tuple
    distances: dict
    diverged: tuple = ()

    @property
    def agrees(self):
        """True when the detected phase equals the theoretical one (None if not decided; a
        diverged scaling never agrees)."""
        return None if self.decision is None else self.decision.phase == self.regime.phase


def _reduce(series, metric, statistic):
    """One number per cell: the ``statistic`` of the ``metric`` series."""
    if isinstance(series, dict):
        if metric not in series:
            raise ValueError(f"cell results have no metric {metric!r}; found {sorted(series)}")
        series = series[metric]
    series = np.asarray(series, dtype=float)
    return float(series.max() if statistic == "max" else series[-1])


def summarize(out_dir):
    """Per-scaling theory vs empirical phase of a (possibly unfinished) scan.

    A scaling uses the widths whose repeats are all finished (or diverged) and gets a
    :class:`Decision` when there are at least two; each cell's distance series is reduced to
    one number with the configured metric and statistic. A diverged cell contributes no
    distance: its scaling is detected as :data:`DIVERGED`.

    Returns
    -------
    config : ScanConfig
    results : list of ScalingResult
    missing : int
        Cells of the manifest without a valid record yet.
    """
    config, records, missing = load_records(out_dir)
    by_cell = {(r["identity"]["tau"], r["identity"]["keep"], r["identity"]["width"],
                r["identity"]["repeat"]): r for r in records}
    results = []
    for spec in config.scalings:
        regime = classify(spec.scaling())
        widths = [w for w in config.widths
                  if all((spec.tau, spec.keep, w, r) in by_cell for r in range(config.repeats))]
        grid = [[by_cell[(spec.tau, spec.keep, w, r)] for w in widths]
                for r in range(config.repeats)]
        distances, reports = {}, []
        if widths:
            limits = grid[0][0]["identity"]["limits"]
            distances = {lim: np.array([[math.nan if cell["diverged"] else
                                         _reduce(cell["distances"][lim], config.metric,
                                                 config.statistic) for cell in row]
                                        for row in grid]) for lim in limits}
            reports = [dict(width=cell["identity"]["width"], repeat=cell["identity"]["repeat"],
                            **{k: cell["diverged"].get(k) for k in ("step", "variant",
                                                                    "message")})
                       for row in grid for cell in row if cell["diverged"]]
        decision = None
        if len(widths) >= 2:
            diverged = np.array([[bool(cell["diverged"]) for cell in row] for row in grid])
            decision = decide_phase(widths, distances, config.slope_threshold, diverged)
        results.append(ScalingResult(spec, regime, decision, tuple(widths), distances,
                                     tuple(reports)))
    return config, results, missing
