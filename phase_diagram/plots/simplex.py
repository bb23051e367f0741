"""The simplex of scalings and the theory's phase diagram drawn on it (Chizat, Marion & Yesbay,
2025, Figure 1), with the colours and legend names of the phases used by every figure of
:mod:`phase_diagram.plots`.

The simplex point u = (u_n, u_τ, u_q) = (log n, −log τ_n, −log q_n)/S_n is drawn at
u_n·e_n + u_τ·e_τ + u_q·e_q with corners e_n (bottom left), e_τ (bottom right) and e_q (top).
Regions: grey WGF triangle u_q < min(u_n, u_τ); green penalized-WGF segment u_n = u_q < u_τ;
blue continuous-jump segment u_τ = u_q < u_n; red critical point (⅓, ⅓, ⅓); orange
discrete-jump vertex (1, 0, 0); red degenerate area u_q > min(u_n, u_τ).
"""
import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon

from meanfield_dropout.plots.style import LIMIT_COLORS, LIMIT_LABELS

from ..scan.summary import DIVERGED
from ..theory.phases import DEGENERATE

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


def _draw_regions(ax, light):
    """The degenerate and WGF regions, the simplex's outline and the two theory segments: as
    in the paper's Figure 1 with the grid, or ``light`` (pale, thin lines, no grid) under
    overlays."""
    red, grey, outline, line, zorder = (0.07, "0.93", 1.0, 1.5, 2) if light else \
        (0.25, "0.75", 1.2, 3, 3)
    e_n, e_tau, e_q = np.eye(3)
    centroid = np.full(3, 1 / 3)
    ax.add_patch(Polygon(to_cartesian([e_n, centroid, e_tau, e_q]), closed=True,
                         facecolor="tab:red", alpha=red, edgecolor="none", zorder=0))
    ax.add_patch(Polygon(to_cartesian([e_n, e_tau, centroid]), closed=True,
                         facecolor=grey, edgecolor="none", zorder=0))
    if not light:
        _draw_grid(ax)
    ax.add_patch(Polygon(CORNERS, closed=True, fill=False, edgecolor="black", lw=outline,
                         zorder=2))
    ax.plot(*to_cartesian([e_n, centroid]).T, color=PHASE_COLORS["jump-poisson"], lw=line,
            zorder=zorder)
    ax.plot(*to_cartesian([e_tau, centroid]).T, color=PHASE_COLORS["penalized-wgf"], lw=line,
            zorder=zorder)


def draw_theory(ax, legend=True):
    """Draw the theoretical phase diagram on ``ax`` (regions as in the paper's Figure 1)."""
    e_n, centroid = np.eye(3)[0], np.full(3, 1 / 3)
    _draw_regions(ax, light=False)
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


def _light_theory(ax):
    """The theory's regions, light, with its lines and special points (for overlays)."""
    _draw_regions(ax, light=True)
    for corner, label, (dx, dy) in zip(CORNERS, ("$u_n$=1", "$u_\\tau$=1", "$u_q$=1"),
                                       ((-0.07, -0.06), (0.07, -0.06), (0.0, 0.05))):
        ax.text(corner[0] + dx, corner[1] + dy, label, ha="center", va="center", fontsize=8)
    ax.set_xlim(-0.12, 1.12)
    ax.set_ylim(-0.12, 0.95)
    ax.set_aspect("equal")
    ax.axis("off")
