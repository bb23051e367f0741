"""Phase-diagram explorer for dropout in the mean-field regime (Chizat, Marion & Yesbay).

* :mod:`phase_diagram.scalings` — hyperparameter scalings n ↦ (τ_n, q_n), their barycentric
  point and limit constants α, β, τ_∞; the safe expression parser :func:`parse_scaling`.
* :mod:`phase_diagram.regimes` — :func:`classify` a scaling into the five phases or degenerate.
* :mod:`phase_diagram.scan` — resumable empirical scans on a process pool or Dask.
* :mod:`phase_diagram.plots` — the barycentric phase diagram and distance-vs-width panels.

Command line: ``python -m phase_diagram {classify,scan,plot,theory} ...``.
"""
from .regimes import DEGENERATE, PHASES, Regime, classify
from .scalings import CallableScaling, PowerLog, PowerLogScaling, Scaling, parse_scaling, power_law

__all__ = ["PHASES", "DEGENERATE", "Regime", "classify", "Scaling", "PowerLog",
           "PowerLogScaling", "CallableScaling", "parse_scaling", "power_law"]
