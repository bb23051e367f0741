"""Phase-diagram explorer for dropout in the mean-field regime (Chizat, Marion & Yesbay, 2025).

* :mod:`phase_diagram.scalings` — hyperparameter scalings n ↦ (τ_n, q_n), their barycentric
  point and limit constants α, β, τ_∞; the safe expression parser :func:`parse_scaling`.
* :mod:`phase_diagram.regimes` — :func:`classify` a scaling into the five phases or degenerate.
* :mod:`phase_diagram.convergence` — convergence of dropout along scalings given as
  expressions of n, and the five-phase check.
* :mod:`phase_diagram.scan` — resumable empirical scans on a process pool or Dask.
* :mod:`phase_diagram.experiments` — the phase-diagram and five-phase experiments, and the
  registry of every experiment of both papers.
* :mod:`phase_diagram.plots` — the barycentric phase diagram and distance-vs-width panels.

Command line: ``phase-diagram {classify,scan,plot,theory,converge,reproduce} ...`` (or
``python -m phase_diagram``).
"""
from meanfield_dropout import __version__

from .regimes import DEGENERATE, PHASES, Regime, classify
from .scalings import CallableScaling, PowerLog, PowerLogScaling, Scaling, parse_scaling, power_law

__all__ = ["__version__", "PHASES", "DEGENERATE", "Regime", "classify", "Scaling", "PowerLog",
           "PowerLogScaling", "CallableScaling", "parse_scaling", "power_law"]
