"""Figures of the finite-width finder: the phase maps of :func:`phase_diagram.finder.phase_map.
run_map` and the figure of one :func:`phase_diagram.finder.locate.locate` run.
"""
import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..finder.comparison import NONE
from ..finder.locate import _gmean_interval
from ..theory.phases import DEGENERATE, PHASES
from .simplex import PHASE_COLORS, PHASE_LABELS, _light_theory, to_cartesian


def _map_panel(ax, summary, width, rule):
    """One ternary panel: every point coloured by its limit under ``rule`` at ``width``."""
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
