"""Phase-diagram explorer for dropout in the mean-field regime (Chizat, Marion & Yesbay, 2025).

* :mod:`phase_diagram.theory.scalings` — hyperparameter scalings n ↦ (τ_n, q_n), their barycentric
  point and limit constants α, β, τ_∞; the safe expression parser :func:`parse_scaling`.
* :mod:`phase_diagram.theory.phases` — :func:`classify` a scaling into the five phases or degenerate.
* :mod:`phase_diagram.convergence` — convergence of dropout along scalings given as
  expressions of n, and the five-phase check.
* :mod:`phase_diagram.scan` — resumable empirical scans on a process pool or Dask.
* :mod:`phase_diagram.experiments` — the phase-diagram and five-phase experiments, and the
  registry of every experiment of both papers.
* :mod:`phase_diagram.finder.decision` — the stated rules that name a limit from distances, or
  answer "undetermined" with the reason.
* :mod:`phase_diagram.finder.locate` — :func:`~phase_diagram.finder.locate.locate`: which limit describes a
  concrete network (width, learning rate, keep).
* :mod:`phase_diagram.finder.phase_map` — finite-width phase maps over the whole simplex.
* :mod:`phase_diagram.plots` — the barycentric phase diagram, distance-vs-width panels, the
  ``locate`` figure and the phase maps.

Command line: ``phase-diagram {classify,scan,plot,theory,converge,locate,map,reproduce} ...``
(or ``python -m phase_diagram``).
"""
from meanfield_dropout import __version__

from .theory.phases import DEGENERATE, PHASES, Regime, classify
from .theory.scalings import (CallableScaling, PowerLog, PowerLogScaling, Scaling,
                              parse_scaling, power_law)

__all__ = ["__version__", "PHASES", "DEGENERATE", "Regime", "classify", "Scaling", "PowerLog",
           "PowerLogScaling", "CallableScaling", "load", "parse_scaling", "power_law"]


def load(path, expected=None):
    """Read any result file of both packages (:func:`meanfield_dropout.load`), the
    phase-diagram experiments' caches included."""
    import meanfield_dropout
    from . import experiments  # noqa: F401 (registers the phase-diagram result classes)
    return meanfield_dropout.load(path, expected)
