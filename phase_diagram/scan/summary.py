"""Read a scan back and decide the empirical phase of each scaling.

The empirical phase of a scaling follows the stated rule of
:func:`phase_diagram.decision.decide_asymptotic`: a limit is named only when its distance is
clearly (95% intervals over the repeats) at least twice below every other candidate's at the
largest width and clearly falling with n; otherwise the answer is ``undetermined`` with the
reason. A diverged cell counts as "not converging to that limit", never as a distance.
"""
import dataclasses
import math
from pathlib import Path

import numpy as np

from meanfield_dropout.stats import loglog_fit

from ..decision import (DEFAULT_RATIO, DEFAULT_SLOPE_THRESHOLD, DEFAULT_WINDOW, UNDETERMINED,
                        decide_asymptotic)
from ..regimes import classify
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
    """The empirical phase of one scaling (:func:`phase_diagram.decision.decide_asymptotic`).

    Attributes
    ----------
    phase : str
        The limit whose distance is clearly below the others and clearly falling with n,
        ``"degenerate"`` (every limit diverged or moves away), or ``"undetermined"``.
    reason : str
        One line: why this answer (for ``undetermined``, what is missing).
    width : int
        The largest width the decision used.
    slopes : dict
        limit → (mean, std) over repeats of the per-repeat log–log slope of distance vs width
        (over all widths; for the panels).
    fits : dict
        limit → :class:`~phase_diagram.decision.CandidateFit` of the rule.
    """

    phase: str
    reason: str
    width: int
    slopes: dict
    fits: dict

    @property
    def decided(self):
        """False for ``undetermined``."""
        return self.phase != UNDETERMINED


def _repeat_slopes(widths, d):
    """(mean, std) over repeats of the log–log slopes of the rows of ``d`` (inf if diverged)."""
    slopes = [loglog_fit(widths, row)[0] if np.isfinite(row).all() and np.all(row > 0)
              else math.inf for row in d]
    return float(np.mean(slopes)), float(np.std(slopes)) if np.isfinite(slopes).all() \
        else math.inf


def decide_phase(widths, distances, slope_threshold=DEFAULT_SLOPE_THRESHOLD, *,
                 window=DEFAULT_WINDOW, ratio=DEFAULT_RATIO):
    """Decide the empirical phase from distances to each candidate limit.

    Parameters
    ----------
    widths : array_like, shape (W,)
        Widths n (increasing).
    distances : dict
        limit → array of shape (R, W): the distance (one number per cell) for each repeat and
        width; a non-finite entry is a diverged cell (never a distance).
    slope_threshold, window, ratio
        The rule of :func:`phase_diagram.decision.decide_asymptotic`.

    Returns
    -------
    Decision
    """
    widths = np.asarray(widths, dtype=float)
    arrays = {lim: np.asarray(d, dtype=float) for lim, d in distances.items()}
    rule = decide_asymptotic(widths, {lim: d.T for lim, d in arrays.items()},
                             window=window, ratio=ratio, slope_threshold=slope_threshold)
    slopes = {lim: _repeat_slopes(widths, d) for lim, d in arrays.items()}
    return Decision(rule.phase, rule.reason, rule.width, slopes, rule.fits)


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
        """True when the detected phase equals the theoretical one, False when it differs,
        None when there is no decision or it is ``undetermined``."""
        if self.decision is None or not self.decision.decided:
            return None
        return self.decision.phase == self.regime.phase


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
