"""Read a scan back and decide the empirical phase of each scaling.

The empirical phase of a scaling follows the stated rule of
:func:`phase_diagram.finder.decision.decide_asymptotic`: a limit is named only when its distance is
clearly (95% intervals over the repeats) at least twice below every other candidate's at the
largest width and clearly falling with n; otherwise the answer is ``undetermined`` with the
reason. A diverged cell (a run of the cell left its divergence bounds: its record holds a
divergence report, not distances) is never read as a distance: a scaling with one is detected
as :data:`DIVERGED`, which is no decision about its limit, unless dropout's own runs explode in
the order of the rule's exploding clause (then ``degenerate``). The records' ``dropout_motion``
feeds the rule's frozen clause.
"""
import dataclasses
import math
from pathlib import Path

import numpy as np

from meanfield_dropout.runtime import tables
from meanfield_dropout.stats import loglog_fit

from ..finder.decision import (DEFAULT_RATIO, DEFAULT_SLOPE_THRESHOLD, DEFAULT_WINDOW,
                               UNDETERMINED, decide_asymptotic, explodes, not_falling_note)
from ..theory.phases import classify
from .cells import build_cells
from .config import ScalingSpec, config_from_dict
from .records import read_manifest, scan_store

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

    Every record is validated against its cell (key and identity by the cell store, seed
    and schema by :func:`~phase_diagram.scan.records.record_problem`); invalid ones are left
    out with a warning and counted as missing (the next scan recomputes them).

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
    values, problems = scan_store(out_dir, manifest["config"]).scan(cells, "are left out")
    return config, [values[c.key] for c in cells if c.key in values], len(problems)


@dataclasses.dataclass(frozen=True)
class Decision:
    """The empirical phase of one scaling (:func:`phase_diagram.finder.decision.decide_asymptotic`).

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
        limit → :class:`~phase_diagram.finder.decision.CandidateFit` of the rule.
    intervals_block : bool
        ``undetermined`` only because of the intervals' widths (the rule's point estimates
        decide): more repeats, not more width, may decide it.
    """

    phase: str
    reason: str
    width: int
    slopes: dict
    fits: dict
    intervals_block: bool = False

    @property
    def decided(self):
        """False for ``undetermined`` and :data:`DIVERGED`."""
        return self.phase not in (UNDETERMINED, DIVERGED)


def _repeat_slopes(widths, d):
    """(mean, std) over repeats of the log–log slopes of the rows of ``d`` (inf if diverged)."""
    slopes = [loglog_fit(widths, row)[0] if np.isfinite(row).all() and np.all(row > 0)
              else math.inf for row in d]
    return float(np.mean(slopes)), float(np.std(slopes)) if np.isfinite(slopes).all() \
        else math.inf


def decide_phase(widths, distances, slope_threshold=DEFAULT_SLOPE_THRESHOLD, diverged=None, *,
                 window=DEFAULT_WINDOW, ratio=DEFAULT_RATIO, flat_slope=None, frozen=None,
                 exploded=None):
    """Decide the empirical phase from distances to each candidate limit.

    Parameters
    ----------
    widths : array_like, shape (W,)
        Widths n (increasing).
    distances : dict
        limit → array of shape (R, W): the distance (one number per cell) for each repeat and
        width; a non-finite entry is a diverged cell (never a distance).
    slope_threshold, window, ratio, flat_slope
        The rule of :func:`phase_diagram.finder.decision.decide_asymptotic`.
    diverged : array_like of bool, shape (R, W), optional
        Cells with a divergence report. Any makes the phase :data:`DIVERGED`, unless the
        rule's exploding clause decides the scaling degenerate.
    frozen : array_like of bool, shape (R, W), optional
        Cells whose dropout run never moved (its ``dropout_motion`` is 0): the rule's frozen
        clause.
    exploded : array_like of bool, shape (R, W), optional
        Cells whose divergence report is dropout's own (the rule's exploding clause).

    Returns
    -------
    Decision
    """
    widths = np.asarray(widths, dtype=float)
    arrays = {lim: np.asarray(d, dtype=float) for lim, d in distances.items()}
    rule = decide_asymptotic(widths, {lim: d.T for lim, d in arrays.items()},
                             window=window, ratio=ratio, slope_threshold=slope_threshold,
                             flat_slope=flat_slope,
                             frozen=None if frozen is None else np.asarray(frozen).T,
                             exploded=None if exploded is None else np.asarray(exploded).T)
    slopes = {lim: _repeat_slopes(widths, d) for lim, d in arrays.items()}
    exploding = exploded is not None and explodes(np.asarray(exploded).T, window)
    if diverged is not None and np.any(diverged) and not exploding:
        count = int(np.sum(diverged))
        first = int(widths[np.flatnonzero(np.any(diverged, axis=0))[0]])
        return Decision(DIVERGED, f"{count} cell(s) diverged, the first at n = {first}",
                        rule.width, slopes, rule.fits)
    return Decision(rule.phase, rule.reason, rule.width, slopes, rule.fits,
                    rule.intervals_block)


def dropout_exploded(report):
    """Whether a cell's divergence report (None: the run did not diverge) is dropout's own
    run leaving its bounds (the rule's exploding clause), not a limit's."""
    return bool(report) and report.get("variant") == "dropout"


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
    def repeats(self):
        """Repeats per width of its cells (0 before any width is finished)."""
        return len(next(iter(self.distances.values()))) if self.distances else 0

    @property
    def agrees(self):
        """True when the detected phase equals the theoretical one, False when it differs,
        None when there is no decision, it is ``undetermined`` or the scaling diverged."""
        if self.decision is None or not self.decision.decided:
            return None
        return self.decision.phase == self.regime.phase

    __repr__ = tables.compact_repr

    def to_frame(self):
        """The per-cell distances as a tidy table (pandas, the ``table`` extra): one row per
        limit, width and repeat (NaN where a cell diverged).

        Columns ``scaling`` (its name), ``limit``, ``width``, ``repeat``, ``distance``.
        """
        return tables.frame(
            dict(scaling=self.spec.name, limit=limit, width=int(n), repeat=r,
                 distance=float(values[r, w]))
            for limit, values in self.distances.items() for w, n in enumerate(self.widths)
            for r in range(values.shape[0]))


def decision_table(results):
    """The decisions of a scan as a tidy table (pandas, the ``table`` extra): one row per
    scaling.

    Columns ``scaling``, ``tau``, ``keep`` (its expressions), ``theory`` (the theoretical
    phase), ``detected`` (the empirical one, None without two finished widths), ``width`` (the
    largest width the decision used), ``agrees`` (None when undetermined, diverged or not
    decided), ``diverged_cells`` and ``reason``.
    """
    return tables.frame(
        dict(scaling=r.spec.name, tau=r.spec.tau, keep=r.spec.keep, theory=r.regime.phase,
             detected=r.decision.phase if r.decision else None,
             width=r.decision.width if r.decision else None, agrees=r.agrees,
             diverged_cells=len(r.diverged), reason=r.decision.reason if r.decision else None)
        for r in results)


def decision_lines(results, verbose=False, flat_slope=None):
    """One line per decided scaling (theory, detected phase, largest width, agreement and
    diverged cells; with ``verbose`` the reason below it) and a count of the agreements (and
    the not-falling option the decisions were read with, if any)."""
    decided = [r for r in results if r.decision is not None]
    lines = []
    for r in decided:
        mark = {True: "agree", False: "WRONG", None: "-"}[r.agrees]
        first = r.diverged[0] if r.diverged else None
        note = (f" ({len(r.diverged)} cell(s) diverged, first at n={first['width']}: "
                f"{first['message']})" if first else "")
        lines.append(f"{r.spec.name:40s} theory={r.regime.phase:15s} "
                     f"detected={r.decision.phase:15s} n<={r.decision.width:<6d} {mark}{note}")
        if verbose:
            lines.append(f"    {r.decision.reason}")
    agree = sum(r.agrees is True for r in decided)
    wrong = sum(r.agrees is False for r in decided)
    lines.append(f"decided {agree + wrong}/{len(decided)} scalings: {agree} agree with theory, "
                 f"{wrong} wrong, {len(decided) - agree - wrong} undetermined or diverged"
                 + (f"; {not_falling_note(flat_slope)}" if flat_slope is not None else ""))
    return lines


def _reduce(series, metric, statistic):
    """One number per cell: the ``statistic`` of the ``metric`` series (inf if diverged)."""
    if isinstance(series, dict):
        if metric not in series:
            raise ValueError(f"cell results have no metric {metric!r}; found {sorted(series)}")
        series = series[metric]
    series = np.asarray(series, dtype=float)
    return float(series.max() if statistic == "max" else series[-1])


def summarize(out_dir, flat_slope=None):
    """Per-scaling theory vs empirical phase of a (possibly unfinished) scan.

    A scaling uses the widths whose repeats are all finished (or diverged) and gets a
    :class:`Decision` when there are at least two; each cell's distance series is reduced to
    one number with the configured metric and statistic. A diverged cell contributes no
    distance: its scaling is detected as :data:`DIVERGED`. ``flat_slope`` is the rule's
    not-falling option (:func:`~phase_diagram.finder.decision.decide_asymptotic`), applied when
    the records are read: it is no part of the scan's configuration.

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
            frozen = np.array([[cell.get("dropout_motion") == 0 for cell in row]
                               for row in grid])
            exploded = np.array([[dropout_exploded(cell["diverged"]) for cell in row]
                                 for row in grid])
            decision = decide_phase(widths, distances, config.slope_threshold, diverged,
                                    flat_slope=flat_slope, frozen=frozen, exploded=exploded)
        results.append(ScalingResult(spec, regime, decision, tuple(widths), distances,
                                     tuple(reports)))
    return config, results, missing
