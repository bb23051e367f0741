"""Every figure of ``phase_diagram``; functions return a ``matplotlib.figure.Figure`` (no pyplot
state), saved with :func:`meanfield_dropout.plots.save_figure`.

* :mod:`.simplex` — the simplex of scalings and the theory's phase diagram (Chizat, Marion &
  Yesbay, 2025, Figure 1), the phases' colours and legend names;
* :mod:`.scans` — a scan's empirical phases on the diagram, its distance-vs-width panels, the
  experiments' figure sets and the grid decision;
* :mod:`.finder` — the finite-width phase maps and the figure of one ``locate`` run.

The names below are imported on first use: importing this package does not import matplotlib.
"""
from meanfield_dropout.runtime.lazy import lazy_attributes

_SOURCES = {".finder": ["locate_figure", "phase_map_figure"],
            ".scans": ["convergence_figures", "distance_panels_figure", "grid_decision_figure",
                       "phase_diagram_figure", "phase_diagram_figures"],
            ".simplex": ["CORNER_LABELS", "CORNERS", "PHASE_COLORS", "PHASE_LABELS",
                         "draw_theory", "theory_figure", "to_cartesian"]}

__all__ = ["CORNERS", "CORNER_LABELS", "PHASE_COLORS", "PHASE_LABELS", "to_cartesian",
           "draw_theory", "theory_figure", "phase_diagram_figure", "distance_panels_figure",
           "phase_diagram_figures", "convergence_figures", "grid_decision_figure",
           "phase_map_figure", "locate_figure"]
__getattr__, __dir__ = lazy_attributes(
    __name__, {name: module for module, names in _SOURCES.items() for name in names})
