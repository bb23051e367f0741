"""Read a scan back and decide the empirical phase of each scaling.

The empirical phase of a scaling is the candidate limit whose distance falls with n (fitted
log–log slope below ``-slope_threshold``) and is smallest at the largest width; repeats give the
spread of the slopes and the confidence (the fraction of repeats that reach the same decision).
"""
import dataclasses
import math
from pathlib import Path

import numpy as np

from meanfield_dropout.stats import loglog_fit

from ..regimes import DEGENERATE, classify
from .config import ScalingSpec, config_from_dict
from .records import cell_path, read_manifest, read_record


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
    manifest = read_manifest(out_dir)
    data = manifest["config"]
    data["scaling"] = [dict(name=s["name"], tau=s["tau"], keep=s["keep"])
                       for s in data["scaling"]]
    data["widths"], data["limits"] = list(data["widths"]), list(data["limits"])
    # the manifest's own cell function: validated by form, nothing is imported
    config = config_from_dict(data, allow_import=True)
    records, missing = [], 0
    for key in manifest["cells"]:
        record = read_record(cell_path(out_dir, key))
        if record is None:
            missing += 1
        else:
            records.append(record)
    return config, records, missing


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
