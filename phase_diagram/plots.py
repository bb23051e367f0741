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

from meanfield_dropout.plots.figures import convergence_figure
from meanfield_dropout.plots.style import LIMIT_COLORS, LIMIT_LABELS

from .finder.decision import DEFAULT_SLOPE_THRESHOLD
from .theory.phases import DEGENERATE, PHASES
from .scan.summary import DIVERGED

__all__ = ["PHASE_COLORS", "to_cartesian", "draw_theory", "theory_figure",
           "phase_diagram_figure", "distance_panels_figure", "phase_diagram_figures",
           "convergence_figures", "grid_decision_figure"]

#: Corners of the simplex in the plane: e_n, e_τ, e_q.
CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])
CORNER_LABELS = ("$\\log n$\n$(u_n = 1)$", "$-\\log \\tau_n$\n$(u_\\tau = 1)$",
                 "$-\\log q_n$ $(u_q = 1)$")
#: Colour and legend name of each phase: the limits' (one table for both packages), then
#: the phases that are no limit.
PHASE_COLORS = {**LIMIT_COLORS, DEGENERATE: "black", DIVERGED: "tab:purple"}
PHASE_LABELS = {**LIMIT_LABELS, DEGENERATE: "degenerate (α = ∞ or β = ∞)",
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
    ax.plot(*to_cartesian([e_n, centroid]).T, color=PHASE_COLORS["jump-poisson"], lw=3,
            zorder=3)
    ax.plot(*to_cartesian([e_tau, centroid]).T, color=PHASE_COLORS["penalized-wgf"], lw=3,
            zorder=3)
    ax.plot(*to_cartesian(centroid), "o", color=PHASE_COLORS["critical"], ms=11, mec="black",
            zorder=4)
    ax.plot(*to_cartesian(e_n), "o", color=PHASE_COLORS["jump-bernoulli"], ms=13, mec="black",
            zorder=4)
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
        Line2D([], [], color=PHASE_COLORS["penalized-wgf"], lw=3,
               label="penalized WGF (α = 0, 0 < β < ∞)"),
        Line2D([], [], color=PHASE_COLORS["jump-poisson"], lw=3,
               label="continuous-time jump (0 < α < ∞, β = 0)"),
        Line2D([], [], marker="o", ls="", color=PHASE_COLORS["critical"], mec="black", ms=9,
               label="critical (0 < α, β < ∞)"),
        Line2D([], [], marker="o", ls="", color=PHASE_COLORS["jump-bernoulli"], mec="black",
               ms=10,
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
                 f"{len(numbered) - decided} undetermined", fontsize=11)
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


def _light_theory(ax):
    """The theory's regions, light, with its lines and special points (for overlays)."""
    e_n, e_tau, e_q = np.eye(3)
    centroid = np.full(3, 1 / 3)
    ax.add_patch(Polygon(to_cartesian([e_n, centroid, e_tau, e_q]), closed=True,
                         facecolor="tab:red", alpha=0.07, edgecolor="none", zorder=0))
    ax.add_patch(Polygon(to_cartesian([e_n, e_tau, centroid]), closed=True,
                         facecolor="0.93", edgecolor="none", zorder=0))
    ax.add_patch(Polygon(CORNERS, closed=True, fill=False, edgecolor="black", lw=1.0, zorder=2))
    ax.plot(*to_cartesian([e_n, centroid]).T, color=PHASE_COLORS["jump-poisson"], lw=1.5, zorder=2)
    ax.plot(*to_cartesian([e_tau, centroid]).T, color=PHASE_COLORS["penalized-wgf"],
            lw=1.5, zorder=2)
    for corner, label, (dx, dy) in zip(CORNERS, ("$u_n$=1", "$u_\\tau$=1", "$u_q$=1"),
                                       ((-0.07, -0.06), (0.07, -0.06), (0.0, 0.05))):
        ax.text(corner[0] + dx, corner[1] + dy, label, ha="center", va="center", fontsize=8)
    ax.set_xlim(-0.12, 1.12)
    ax.set_ylim(-0.12, 0.95)
    ax.set_aspect("equal")
    ax.axis("off")


def _map_panel(ax, summary, width, rule):
    """One ternary panel: every point coloured by its limit under ``rule`` at ``width``."""
    from .finder.decision import NONE
    _light_theory(ax)
    for point in summary.points:
        xy = to_cartesian([float(x) for x in point.u])
        size = 9 if point.kind == "grid" else 7
        marker = "o" if point.kind == "grid" else "D"
        c = summary.comparisons.get((point.label, width))
        if c is None:
            ax.plot(*xy, marker="x", ms=5, color="0.6", zorder=3)
            continue
        limit = c.describes if rule == "describes" else (c.nearest if c.close else NONE)
        margin = c.describe_margin if rule == "describes" else c.margin
        shade = 1.0 if not math.isfinite(margin) else float(np.clip(
            0.25 + 0.75 * math.log(max(margin, 1.0)) / math.log(2.0), 0.25, 1.0))
        color = PHASE_COLORS[DEGENERATE] if limit == NONE else PHASE_COLORS[limit]
        ax.plot(*xy, marker=marker, ms=size, ls="", color=color, alpha=shade, mec="white",
                mew=0.5, zorder=4)
        if limit != NONE and limit != summary.theory[point.label] or (
                limit == NONE and summary.theory[point.label] != DEGENERATE):
            ax.plot(*xy, marker="o", ms=size + 4, ls="", mfc="none", mec="black", mew=0.7,
                    zorder=5)


def phase_map_figure(summary):
    """Finite-width phase maps: one ternary panel per width and rule, and the agreement.

    Top row: the simplest limit within 25% of the nearest (shading: how clearly the other
    limits are excluded); bottom row: the nearest limit (shading: its margin over the
    runner-up). Black: no limit within 10% of the target RMS; grey ×: beyond the time budget;
    a ring: differs from the theory's phase. Right: the fraction of points whose limit equals
    the theory's phase, per width.
    """
    from .finder.decision import NONE
    widths = summary.config.widths
    fig = Figure(figsize=(3.3 * len(widths) + 3.6, 6.8), dpi=150)
    grid = fig.add_gridspec(2, len(widths) + 1, width_ratios=[1] * len(widths) + [1.05])
    rows = (("describes", "simplest limit within 25% of the nearest"),
            ("nearest", "nearest limit"))
    for r, (rule, title) in enumerate(rows):
        for k, width in enumerate(widths):
            ax = fig.add_subplot(grid[r, k])
            _map_panel(ax, summary, width, rule)
            ax.set_title(f"n = {width}: {title}" if k == 0 else f"n = {width}", fontsize=8)
    ax = fig.add_subplot(grid[0, -1])
    for rule, style in (("describes", "o-"), ("nearest", "s--")):
        ax.plot(widths, [summary.agreement[w][rule] for w in widths], style,
                label={"describes": "simplest within 25%", "nearest": "nearest"}[rule])
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.set_ylim(0, 1)
    ax.set_xlabel("width n")
    ax.set_ylabel("fraction agreeing with theory")
    count = summary.agreement[widths[0]]["points"]
    ax.set_title(f"agreement ({count} points finished at every width)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    legend_ax = fig.add_subplot(grid[1, -1])
    legend_ax.axis("off")
    handles = [Line2D([], [], marker="o", ls="", color=PHASE_COLORS[p], label=PHASE_LABELS[p])
               for p in PHASES]
    handles += [Line2D([], [], marker="o", ls="", color=PHASE_COLORS[DEGENERATE],
                       label=f"{NONE}: no limit within 10%"),
                Line2D([], [], marker="x", ls="", color="0.6", label="beyond time budget"),
                Line2D([], [], marker="o", ls="", mfc="none", mec="black",
                       label="differs from theory"),
                Line2D([], [], marker="D", ls="", color="0.3", label="point on a theory line")]
    legend_ax.legend(handles=handles, loc="center", fontsize=7, frameon=False)
    c = summary.config
    fig.suptitle(f"Finite-width phase maps: power laws tau_n = n^(-u_tau/u_n)/2, "
                 f"q_n = n^(-u_q/u_n)/2 through a grid of {c.grid} divisions; T = {c.horizon:g}, "
                 f"{c.repeats} repeats, {c.data} data (targets x {c.target_scale:g})",
                 fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.9, bottom=0.06, wspace=0.08, hspace=0.12)
    return fig


def locate_figure(result):
    """``locate``: predictor error over time per limit, the sup-distance per limit with its
    95% interval, and (with a ladder) the distance to the nearest limit against width."""
    panels = 3 if result.ladder is not None else 2
    fig = Figure(figsize=(4.4 * panels, 3.8), dpi=150)
    axes = fig.subplots(1, panels)
    scale = result.scale
    names = sorted(result.curves, key=lambda k: result.comparison.relative[k])
    for name in names:
        curve = result.curves[name] / scale
        axes[0].plot(result.times, curve.mean(axis=0), "o-", ms=3, color=PHASE_COLORS[name],
                     label=name)
        axes[0].fill_between(result.times, curve.min(axis=0), curve.max(axis=0),
                             color=PHASE_COLORS[name], alpha=0.15)
    axes[0].set_ylim(bottom=0)
    axes[0].set_xlabel("time t = k tau (grid times rounded to steps)")
    axes[0].set_ylabel("predictor error / RMS(y)")
    axes[0].set_title("dropout vs each limit (mean, band: min-max)", fontsize=9)
    axes[0].legend(fontsize=7)
    from .finder.locate import _gmean_interval
    for i, name in enumerate(names):
        g, lo, hi = (v / scale for v in _gmean_interval(result.distances[name]["max"]))
        axes[1].errorbar([i], [g], yerr=[[g - lo], [hi - g]], fmt="o", capsize=3,
                         color=PHASE_COLORS[name])
    axes[1].axhline(result.comparison.settings["close_threshold"], color="black", ls=":",
                    lw=1, label="'close' threshold")
    axes[1].set_xticks(range(len(names)), names, rotation=30, fontsize=7)
    axes[1].set_yscale("log")
    axes[1].set_ylabel("sup_t predictor error / RMS(y)")
    axes[1].set_title(f"nearest: {result.comparison.nearest}; described by: "
                      f"{result.comparison.describes}", fontsize=9)
    axes[1].legend(fontsize=7)
    if result.ladder is not None:
        lad = result.ladder
        d = np.maximum(lad["distances"], 1e-300) / scale
        axes[2].loglog(lad["widths"], np.exp(np.log(d).mean(axis=1)), "o-",
                       color=PHASE_COLORS[lad["limit"]], label=lad["limit"])
        for j in range(d.shape[1]):
            axes[2].plot(lad["widths"], d[:, j], ".", color=PHASE_COLORS[lad["limit"]],
                         alpha=0.4)
        axes[2].set_xticks(lad["widths"], [str(w) for w in lad["widths"]])
        axes[2].minorticks_off()
        s, lo, hi = lad["slope"]
        axes[2].set_title(f"along the power law: slope {s:+.2f} [{lo:+.2f}, {hi:+.2f}]",
                          fontsize=9)
        axes[2].set_xlabel("width n")
        axes[2].set_ylabel("sup_t predictor error / RMS(y)")
        axes[2].legend(fontsize=7)
    fig.suptitle(f"n = {result.width}, tau = {result.master_lr:g}, q = {result.keep_prob:g}: "
                 f"alpha_n = {result.constants['alpha']:.3g}, beta_n = "
                 f"{result.constants['beta']:.3g}; theory of the power law: "
                 f"{result.theory.phase}", fontsize=9)
    fig.tight_layout()
    return fig


def _line_position(point):
    """(line, b) for a point on a theory segment: ``"jump-poisson"`` (u_τ = u_q < u_n) or
    ``"penalized-wgf"`` (u_n = u_q < u_τ), b = u_τ/u_n the exponent of τ_n; None otherwise."""
    u_n, u_tau, u_q = point.u
    if u_tau == u_q < u_n:
        return "jump-poisson", float(u_tau / u_n)
    if u_n == u_q < u_tau:
        return "penalized-wgf", float(u_tau / u_n)
    return None


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
                       label=f"beyond the step budget ({summary.config.max_steps} steps)"),
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
                 f"budget,\ndecided {fractions}; {summary.wrong} wrong", fontsize=9)
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
                 f"τ_n = n^(-u_τ/u_n)/2, q_n = n^(-u_q/u_n)/2; widths {c.widths[0]}..."
                 f"{c.max_width} (doubling where undetermined), {c.repeats} repeats, "
                 f"T = {c.horizon:g}", fontsize=9)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.9, bottom=0.08)
    return fig
