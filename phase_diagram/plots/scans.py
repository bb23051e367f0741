"""Figures of scans: the theory diagram with the scanned scalings' empirical phases, the
distance-vs-width panels, the experiments' figure sets, and the phase diagram decided on a grid
(:func:`phase_diagram.scan.grid.summarize_grid`).
"""
import math
import warnings

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from meanfield_dropout.plots.figures import convergence_figure

from ..finder.decision import DEFAULT_SLOPE_THRESHOLD, not_falling_note
from ..scan.summary import DIVERGED
from ..theory.phases import DEGENERATE, PHASES
from .simplex import (PHASE_COLORS, PHASE_LABELS, _theory_handles, draw_theory, theory_figure,
                      to_cartesian)


def _spread(points, gap=0.075, iterations=200):
    """Push markers apart until no two are closer than ``gap`` (plane units), keeping each near
    its exact position; coincident points start fanned out on a small circle."""
    out = np.asarray(points, dtype=float).copy()
    fan = 2 * np.pi * np.arange(len(out)) / max(len(out), 1)
    out += 1e-3 * np.c_[np.cos(fan), np.sin(fan)]
    for _ in range(iterations):
        moved = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                delta = out[j] - out[i]
                dist = np.hypot(*delta)
                if dist < gap:
                    push = 0.5 * (gap - dist) * delta / dist
                    out[i] -= push
                    out[j] += push
                    moved = True
        if not moved:
            break
    return out


def phase_diagram_figure(results, flat_slope=None):
    """The theory diagram with the empirical phase of each scanned scaling overlaid.

    Parameters
    ----------
    results : list of :class:`~phase_diagram.scan.summary.ScalingResult`
        Scalings without a simplex limit or without a decision are skipped.
    flat_slope : float, optional
        The not-falling option the decisions were read with, named in the title.

    Notes
    -----
    Each scaling is a diamond at its simplex limit (coincident points are fanned out around
    it), coloured by the detected phase and numbered as in the distance panels; a black ring
    marks disagreement with theory.
    """
    fig = Figure(figsize=(9.5, 6.8), dpi=150)
    ax = fig.add_subplot()
    draw_theory(ax, legend=False)
    numbered = [(i + 1, r) for i, r in enumerate(results)
                if r.decision is not None and r.regime.simplex_limit is not None]
    agree = sum(r.agrees is True for _, r in numbered)
    wrong = sum(r.agrees is False for _, r in numbered)
    decided = agree + wrong
    if numbered:
        exact = to_cartesian([r.regime.simplex_limit for _, r in numbered])
        xy = _spread(exact)
        for (x, y), (x0, y0), (number, r) in zip(xy, exact, numbered):
            if np.hypot(x - x0, y - y0) > 1e-9:    # fanned out: a leader to the true point
                ax.plot([x0, x], [y0, y], color="black", lw=0.6, zorder=5)
                ax.plot(x0, y0, marker=".", ms=4, color="black", zorder=5)
            if r.decision.decided:
                ax.plot(x, y, marker="D", ms=8, ls="", color=PHASE_COLORS[r.decision.phase],
                        mec="white", mew=0.8, zorder=6)
            else:
                ax.plot(x, y, marker="D", ms=8, ls="", mfc="white", mec="black", mew=1.0,
                        zorder=6)
            if r.agrees is False:
                ax.plot(x, y, marker="o", ms=15, ls="", mfc="none", mec="black", mew=1.8,
                        zorder=7)
            ax.annotate(str(number), (x, y), xytext=(6, 5), textcoords="offset points",
                        fontsize=7, zorder=8)
    handles = _theory_handles() + [
        Line2D([], [], marker="D", ls="", color=PHASE_COLORS[p], mec="white",
               label=f"detected: {PHASE_LABELS[p]}")
        for p in (*PHASES, DEGENERATE, *([DIVERGED] if any(r.decision.phase == DIVERGED
                                                           for _, r in numbered) else []))]
    handles.append(Line2D([], [], marker="D", ls="", mfc="white", mec="black",
                          label="undetermined at these widths"))
    handles.append(Line2D([], [], marker="o", ls="", mfc="none", mec="black", mew=1.8, ms=12,
                          label="disagrees with theory"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    key = "\n".join(f"{number:2d}  {r.spec.name}" for number, r in numbered)
    ax.text(1.02, 0.35, key, transform=ax.transAxes, fontsize=7.5, va="top", family="monospace")
    ax.set_title(f"Empirical phases of {len(numbered)} scalings: {decided} decided "
                 f"({agree} agree with theory, {wrong} wrong), "
                 f"{len(numbered) - decided} undetermined"
                 + (f";\n{not_falling_note(flat_slope)}" if flat_slope is not None else ""),
                 fontsize=11)
    fig.subplots_adjust(left=0.02, right=0.55)
    return fig


def distance_panels_figure(results, statistic="max"):
    """One log–log panel of distance vs width per scaling, one curve per candidate limit.

    Points are geometric means over repeats with min–max bars (diverged cells left out); the
    legend gives the fitted slope (mean ± std over repeats).
    """
    numbered = [(i + 1, r) for i, r in enumerate(results) if r.decision is not None]
    if not numbered:
        raise ValueError("no scaling has finished cells at two or more widths")
    ncols = min(4, len(numbered))
    nrows = math.ceil(len(numbered) / ncols)
    fig = Figure(figsize=(4.0 * ncols, 3.3 * nrows), dpi=150)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (number, r) in zip(axes.flat, numbered):
        widths = np.asarray(r.widths, dtype=float)
        drawn = 0
        for limit, d in r.distances.items():
            d = np.maximum(np.asarray(d), 1e-300)
            if not np.isfinite(d).any():
                continue                   # every cell diverged: no distance to draw
            with warnings.catch_warnings():     # widths where every repeat diverged
                warnings.simplefilter("ignore", RuntimeWarning)
                mid = np.exp(np.nanmean(np.log(d), axis=0))
                low, high = np.nanmin(d, axis=0), np.nanmax(d, axis=0)
            slope, spread = r.decision.slopes[limit]
            # the geometric mean of one repeat can differ from it by rounding: clip at 0
            spread_bars = [np.maximum(mid - low, 0.0), np.maximum(high - mid, 0.0)]
            ax.errorbar(widths, mid, yerr=spread_bars,
                        marker="o", ms=4, capsize=2, color=PHASE_COLORS[limit],
                        label=f"{limit}: slope {slope:+.2f}±{spread:.2f}")
            drawn += 1
        ax.set_xscale("log")
        if drawn:
            ax.set_yscale("log")
            ax.legend(fontsize=7)
        else:
            ax.set_xlim(widths.min() / 1.3, widths.max() * 1.3)
            ax.text(0.5, 0.5, "every cell diverged", transform=ax.transAxes, ha="center")
        ax.set_xlabel("width n")
        ax.set_ylabel(f"distance ({statistic} over [0, T])" if statistic == "max"
                      else "distance at T")
        verdict = {True: "agrees", False: "DISAGREES", None: "no decision"}[r.agrees]
        if r.diverged:
            widths = sorted({d["width"] for d in r.diverged})
            verdict += f"; diverged at n = {', '.join(map(str, widths))}"
        ax.set_title(f"#{number} {r.spec.name}\ntheory {r.regime.phase}, "
                     f"detected {r.decision.phase} (n <= {r.decision.width}) — {verdict}",
                     fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(numbered):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def phase_diagram_figures(result):
    """The figures of the ``phase_diagram`` experiment (a ``PhaseDiagramResult``):
    ``phase_diagram_theory``, ``phase_diagram`` (scan overlay) and ``phase_diagram_panels``
    (distance against width per scaling) → Figure."""
    return {"phase_diagram_theory": theory_figure(),
            "phase_diagram": phase_diagram_figure(result.scalings),
            "phase_diagram_panels": distance_panels_figure(result.scalings,
                                                           result.config.statistic)}


def convergence_figures(result):
    """The figure of the ``convergence`` experiment (a ``ConvergencePhasesResult``):
    ``convergence_phases`` → Figure."""
    return {"convergence_phases": convergence_figure(result.studies)}


def _line_position(point):
    """(line, b) for a point on a theory segment: ``"jump-poisson"`` (u_τ = u_q < u_n) or
    ``"penalized-wgf"`` (u_n = u_q < u_τ), b = u_τ/u_n the exponent of τ_n; None otherwise."""
    u_n, u_tau, u_q = point.u
    if u_tau == u_q < u_n:
        return "jump-poisson", float(u_tau / u_n)
    if u_n == u_q < u_tau:
        return "penalized-wgf", float(u_tau / u_n)
    return None


def _steps_label(n):
    """``n`` as 2^k when it is a power of two, else with thousands separators."""
    k = n.bit_length() - 1
    return f"$2^{{{k}}}$" if n == 1 << k else f"{n:,}"


def grid_decision_figure(summary):
    """The phase diagram decided from simulations (:func:`phase_diagram.scan.grid.
    summarize_grid`), and the measured convergence rate along the theory's segments.

    Left: the theory's regions and lines; over them every point, filled with the colour of
    its decided phase, hollow and labelled with the largest width run when undetermined,
    a grey × when its dropout run is beyond the step budget (purple hollow: a run diverged);
    circles are grid points, diamonds points on a theory line or special points; a black ring
    would mark a decision that contradicts the theory. Right: along the continuous-jump
    segment (τ_n ∝ q_n ∝ n^(−b), b < 1) and the penalized segment (τ_n ∝ n^(−b), b > 1,
    q_n ∝ 1/n), the log–log slope of the distance to the theory's limit against b, with its
    95% interval (window of the decision rule); filled: decided.
    """
    fig = Figure(figsize=(13.5, 6.6), dpi=150)
    grid = fig.add_gridspec(2, 2, width_ratios=[1.55, 1.0], hspace=0.45, wspace=0.12)
    ax = fig.add_subplot(grid[:, 0])
    draw_theory(ax, legend=False)
    for r in summary.results:
        xy = to_cartesian([float(x) for x in r.point.point.u])
        marker = "o" if r.point.point.kind == "grid" else "D"
        if r.status == "decided":
            ax.plot(*xy, marker=marker, ms=10, ls="", color=PHASE_COLORS[r.phase],
                    mec="white", mew=1.0, zorder=6)
            if r.agrees is False:
                ax.plot(*xy, marker="o", ms=17, ls="", mfc="none", mec="black", mew=1.8,
                        zorder=7)
        elif r.status in ("undetermined", DIVERGED):
            edge = PHASE_COLORS[DIVERGED] if r.status == DIVERGED else "black"
            ax.plot(*xy, marker=marker, ms=10, ls="", mfc="white", mec=edge, mew=1.4,
                    zorder=6)
            ax.annotate(f"≤{r.width}", xy, xytext=(6, -9), textcoords="offset points",
                        fontsize=6.5, zorder=8)
        elif r.status == "beyond budget":
            ax.plot(*xy, marker="x", ms=8, ls="", color="0.45", mew=1.5, zorder=6)
        else:
            ax.plot(*xy, marker=".", ms=5, ls="", color="0.45", zorder=6)
    present = sorted({r.phase for r in summary.results if r.status == "decided"},
                     key=lambda p: (*PHASES, DEGENERATE).index(p))
    handles = [Line2D([], [], marker="o", ls="", color=PHASE_COLORS[p], mec="white",
                      label=f"decided: {PHASE_LABELS[p]}") for p in present]
    handles += [Line2D([], [], marker="o", ls="", mfc="white", mec="black",
                       label="undetermined at n ≤ label"),
                Line2D([], [], marker="x", ls="", color="0.45", mew=1.5,
                       label=f"beyond the step budget "
                             f"({_steps_label(summary.config.max_steps)} steps)"),
                Line2D([], [], marker="D", ls="", color="0.3", label="point on a theory line")]
    if any(r.status == DIVERGED for r in summary.results):
        handles.append(Line2D([], [], marker="o", ls="", mfc="white",
                              mec=PHASE_COLORS[DIVERGED], label=PHASE_LABELS[DIVERGED]))
    if summary.wrong:
        handles.append(Line2D([], [], marker="o", ls="", mfc="none", mec="black", mew=1.8,
                              ms=12, label="contradicts theory"))
    ax.legend(handles=handles, loc="upper left", fontsize=7, frameon=False,
              bbox_to_anchor=(-0.02, 1.0))
    run = [r for r in summary.results if r.status != "beyond budget"]
    fractions = ", ".join(f"{f:.0%} at n ≤ {w}" for w, f in summary.decided_fraction.items())
    ax.set_title(f"Phases decided by measured convergence: {len(run)} points within the "
                 f"budget,\ndecided {fractions}; {summary.wrong} wrong"
                 + (f";\n{summary.rule_note}" if summary.rule_note else ""),
                 fontsize=9)
    lines = (("jump-poisson", "continuous-jump segment: τ_n = q_n = n^(-b)/2",
              "distance to jump-poisson"),
             ("penalized-wgf", "penalized segment: τ_n = n^(-b)/2, q_n = 1/(2n)",
              "distance to penalized WGF"))
    for row, (line, title, ylabel) in enumerate(lines):
        ax = fig.add_subplot(grid[row, 1])
        on_line = [(pos[1], r) for r in summary.results
                   if (pos := _line_position(r.point.point)) and pos[0] == line
                   and r.point.theory == line and r.decision is not None
                   and line in r.decision.fits]
        for b, r in sorted(on_line, key=lambda item: item[0]):
            fit = r.decision.fits[line]
            low, high = fit.slope - fit.slope_low, fit.slope_high - fit.slope
            decided = r.status == "decided"
            ax.errorbar([b], [fit.slope], yerr=[[low], [high]], fmt="o", capsize=3,
                        color=PHASE_COLORS[line], mfc=PHASE_COLORS[line] if decided else "white")
            ax.annotate(f"n ≤ {r.width}", (b, fit.slope), xytext=(5, 4),
                        textcoords="offset points", fontsize=6.5)
        ax.axhline(-DEFAULT_SLOPE_THRESHOLD, color="black", ls=":", lw=1,
                   label="'clearly falling' threshold")
        ax.axhline(-0.5, color="0.5", ls="--", lw=0.8, label="slope -1/2")
        if not on_line:
            ax.text(0.5, 0.5, "no point of this segment was run", transform=ax.transAxes,
                    ha="center", fontsize=8)
        ax.set_xlabel("position on the segment: b = u_τ/u_n")
        ax.set_ylabel(f"log-log slope of the\n{ylabel} vs n")
        ax.set_title(title, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="best")
    c = summary.config
    fig.suptitle(f"Empirical phase diagram: grid of {c.grid} divisions, power laws "
                 f"τ_n = n^(-u_τ/u_n)/2, q_n = n^(-u_q/u_n)/2, T = {c.horizon:g}\nwidths "
                 f"{c.widths[0]}...{c.max_width} (doubling where undetermined, down to "
                 f"{c.min_width} where dropout explodes), {c.repeats} repeats (up to "
                 f"{c.max_repeats} where only the intervals block)", fontsize=9)
    # room for the third title line of the not-falling option
    fig.subplots_adjust(left=0.02, right=0.98, top=0.84 if summary.rule_note else 0.87,
                        bottom=0.08)
    return fig
