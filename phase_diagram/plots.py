"""Every figure of ``phase_diagram``: the barycentric phase diagram (Chizat, Marion & Yesbay,
2025, Figure 1), distance-vs-width panels of a scan, and the five-phase convergence figure.

The simplex point u = (u_n, u_τ, u_q) = (log n, −log τ_n, −log q_n)/S_n is drawn at
u_n·e_n + u_τ·e_τ + u_q·e_q with corners e_n (bottom left), e_τ (bottom right) and e_q (top).
Functions return a ``matplotlib.figure.Figure`` (no pyplot state); save them with
:func:`meanfield_dropout.plots.save_figure`.
Regions (Chizat, Marion & Yesbay, 2025, Figure 1): grey WGF triangle u_q < min(u_n, u_τ); green penalized-WGF segment
u_n = u_q < u_τ; blue continuous-jump segment u_τ = u_q < u_n; red critical point (⅓, ⅓, ⅓);
orange discrete-jump vertex (1, 0, 0); red degenerate area u_q > min(u_n, u_τ).
"""
import math
import warnings

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon

from meanfield_dropout.plots import convergence_figure

from .regimes import DEGENERATE, PHASES
from .scan.summary import DIVERGED

__all__ = ["PHASE_COLORS", "to_cartesian", "draw_theory", "theory_figure",
           "phase_diagram_figure", "distance_panels_figure", "phase_diagram_figures",
           "convergence_figures"]

#: Corners of the simplex in the plane: e_n, e_τ, e_q.
CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])
CORNER_LABELS = ("$\\log n$\n$(u_n = 1)$", "$-\\log \\tau_n$\n$(u_\\tau = 1)$",
                 "$-\\log q_n$ $(u_q = 1)$")
PHASE_COLORS = {"wgf": "0.45", "penalized-wgf": "tab:green", "jump-poisson": "tab:blue",
                "jump-bernoulli": "tab:orange", "critical": "red", DEGENERATE: "black",
                DIVERGED: "tab:purple"}
PHASE_LABELS = {"wgf": "WGF (dropout vanishes)", "penalized-wgf": "penalized WGF",
                "jump-poisson": "continuous-time jump (Poisson)",
                "jump-bernoulli": "discrete-time jump (Bernoulli, τ, q > 0)",
                "critical": "critical", DEGENERATE: "degenerate (α = ∞ or β = ∞)",
                DIVERGED: "diverged (a run left its bounds)"}


def to_cartesian(points):
    """Plane coordinates of barycentric points (u_n, u_τ, u_q), shape (..., 3) → (..., 2)."""
    return np.asarray(points, dtype=float) @ CORNERS


def _draw_grid(ax):
    """Grid lines u_k = 0.2, 0.4, ... parallel to the edges, with tick labels on the edges."""
    for level in (0.2, 0.4, 0.6, 0.8):
        for k in range(3):
            i, j = [m for m in range(3) if m != k]
            a = np.zeros(3); a[k] = level; a[i] = 1 - level
            b = np.zeros(3); b[k] = level; b[j] = 1 - level
            ax.plot(*to_cartesian([a, b]).T, color="0.8", lw=0.6, zorder=1)
        # Tick labels: u_n along the left edge, u_τ along the bottom, u_q along the right edge.
        for k, (corner_from, offset) in enumerate(((2, (-0.07, 0.0)), (0, (0.0, -0.05)),
                                                   (1, (0.045, 0.0)))):
            u = np.zeros(3); u[k] = level; u[corner_from] = 1 - level
            x, y = to_cartesian(u)
            ax.text(x + offset[0], y + offset[1], f"{level:.1f}", fontsize=7, color="0.35",
                    ha="center", va="center")
    # Which coordinate the ticks of each edge read.
    edge_names = (((0.12, 0.48), 60, "$u_n$ (left-edge ticks) $\\longleftarrow$"),
                  ((0.5, -0.1), 0, "$u_\\tau$ (bottom-edge ticks) $\\longrightarrow$"),
                  ((0.88, 0.48), -60, "$\\longleftarrow$ $u_q$ (right-edge ticks)"))
    for (x, y), rotation, name in edge_names:
        ax.text(x, y, name, rotation=rotation, fontsize=8, color="0.3", ha="center",
                va="center", rotation_mode="anchor")


def draw_theory(ax, legend=True):
    """Draw the theoretical phase diagram on ``ax`` (regions as in the paper's Figure 1)."""
    e_n, e_tau, e_q = np.eye(3)
    centroid = np.full(3, 1 / 3)
    ax.add_patch(Polygon(to_cartesian([e_n, centroid, e_tau, e_q]), closed=True,
                         facecolor="tab:red", alpha=0.25, edgecolor="none", zorder=0))
    ax.add_patch(Polygon(to_cartesian([e_n, e_tau, centroid]), closed=True,
                         facecolor="0.75", edgecolor="none", zorder=0))
    _draw_grid(ax)
    ax.add_patch(Polygon(CORNERS, closed=True, fill=False, edgecolor="black", lw=1.2, zorder=2))
    ax.plot(*to_cartesian([e_n, centroid]).T, color="tab:blue", lw=3, zorder=3)
    ax.plot(*to_cartesian([e_tau, centroid]).T, color="tab:green", lw=3, zorder=3)
    ax.plot(*to_cartesian(centroid), "o", color="red", ms=11, mec="black", zorder=4)
    ax.plot(*to_cartesian(e_n), "o", color="tab:orange", ms=13, mec="black", zorder=4)
    for corner, label, (dx, dy, ha) in zip(CORNERS, CORNER_LABELS,
                                           ((-0.08, -0.11, "center"), (0.06, -0.08, "center"),
                                            (0.0, 0.05, "center"))):
        ax.text(corner[0] + dx, corner[1] + dy, label, ha=ha, va="center", fontsize=10)
    ax.set_xlim(-0.2, 1.2)
    ax.set_ylim(-0.2, 0.95)
    ax.set_aspect("equal")
    ax.axis("off")
    if legend:
        ax.legend(handles=_theory_handles(), loc="upper center", fontsize=8, ncol=2,
                  bbox_to_anchor=(0.5, 0.0))


def _theory_handles():
    return [
        Patch(facecolor="0.75", label="WGF: dropout vanishes (α = β = 0)"),
        Line2D([], [], color="tab:green", lw=3, label="penalized WGF (α = 0, 0 < β < ∞)"),
        Line2D([], [], color="tab:blue", lw=3, label="continuous-time jump (0 < α < ∞, β = 0)"),
        Line2D([], [], marker="o", ls="", color="red", mec="black", ms=9,
               label="critical (0 < α, β < ∞)"),
        Line2D([], [], marker="o", ls="", color="tab:orange", mec="black", ms=10,
               label="discrete-time jump (τ, q > 0)"),
        Patch(facecolor="tab:red", alpha=0.25, label="degenerate (α = ∞ or β = ∞)"),
    ]


def theory_figure():
    """A figure with the theoretical phase diagram alone."""
    fig = Figure(figsize=(7.0, 6.6), dpi=150)
    ax = fig.add_subplot()
    draw_theory(ax)
    ax.set_title("Phase diagram of dropout (mean-field scaling):\n"
                 "limit of $(\\log n, -\\log\\tau_n, -\\log q_n)/S_n$", fontsize=11)
    return fig


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


def phase_diagram_figure(results):
    """The theory diagram with the empirical phase of each scanned scaling overlaid.

    Parameters
    ----------
    results : list of :class:`~phase_diagram.scan.summary.ScalingResult`
        Scalings without a simplex limit or without a decision are skipped.

    Each scaling is a diamond at its simplex limit (coincident points are fanned out around
    it), coloured by the detected phase and numbered as in the distance panels; a black ring
    marks disagreement with theory.
    """
    fig = Figure(figsize=(9.5, 6.8), dpi=150)
    ax = fig.add_subplot()
    draw_theory(ax, legend=False)
    numbered = [(i + 1, r) for i, r in enumerate(results)
                if r.decision is not None and r.regime.simplex_limit is not None]
    agree = sum(bool(r.agrees) for _, r in numbered)
    if numbered:
        exact = to_cartesian([r.regime.simplex_limit for _, r in numbered])
        xy = _spread(exact)
        for (x, y), (x0, y0), (number, r) in zip(xy, exact, numbered):
            if np.hypot(x - x0, y - y0) > 1e-9:    # fanned out: a leader to the true point
                ax.plot([x0, x], [y0, y], color="black", lw=0.6, zorder=5)
                ax.plot(x0, y0, marker=".", ms=4, color="black", zorder=5)
            ax.plot(x, y, marker="D", ms=8, ls="", color=PHASE_COLORS[r.decision.phase],
                    mec="white", mew=0.8, zorder=6)
            if not r.agrees:
                ax.plot(x, y, marker="o", ms=15, ls="", mfc="none", mec="black", mew=1.8,
                        zorder=7)
            ax.annotate(str(number), (x, y), xytext=(6, 5), textcoords="offset points",
                        fontsize=7, zorder=8)
    handles = _theory_handles() + [
        Line2D([], [], marker="D", ls="", color=PHASE_COLORS[p], mec="white",
               label=f"detected: {PHASE_LABELS[p]}")
        for p in (*PHASES, DEGENERATE, *([DIVERGED] if any(r.decision.phase == DIVERGED
                                                           for _, r in numbered) else []))]
    handles.append(Line2D([], [], marker="o", ls="", mfc="none", mec="black", mew=1.8, ms=12,
                          label="disagrees with theory"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    key = "\n".join(f"{number:2d}  {r.spec.name}" for number, r in numbered)
    ax.text(1.02, 0.35, key, transform=ax.transAxes, fontsize=7.5, va="top", family="monospace")
    ax.set_title(f"Empirical phases of {len(numbered)} scalings "
                 f"({agree}/{len(numbered)} agree with theory)", fontsize=11)
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
        verdict = "agrees" if r.agrees else "DISAGREES"
        if r.diverged:
            widths = sorted({d["width"] for d in r.diverged})
            verdict += f"; diverged at n = {', '.join(map(str, widths))}"
        ax.set_title(f"#{number} {r.spec.name}\ntheory {r.regime.phase}, "
                     f"detected {r.decision.phase} "
                     f"({r.decision.confidence:.0%}) — {verdict}", fontsize=8)
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
