"""Convergence of dropout along scalings n ↦ (τ_n, q_n) given as expressions of n.

The measurements are :mod:`meanfield_dropout.convergence` with numeric limit constants; here a
scaling is parsed, classified into its phase (Chizat, Marion & Yesbay, 2025) and compared with
the limit dynamics of that phase:

* :func:`scaling_limit` — the phase of a scaling and the constants of its limit;
* :func:`scaling_study` — the ``converge`` command: dropout against the predicted limit (or,
  forced, other limits);
* :data:`PHASE_STUDIES` and :func:`phase_study` — the five-phase check, one scaling per phase
  compared with its predicted limit and with wrong ones;
* :func:`study_verdict` — the verdict of a study by the scans' rule
  (:func:`~phase_diagram.finder.decision.decide_asymptotic`), and :func:`verdict_lines`: the
  verdict on each metric and, when the predictor error and W2 disagree, the one to trust.
"""
import numpy as np

from meanfield_dropout.validation import check_choice
from meanfield_dropout.convergence import METRICS, convergence_study
from meanfield_dropout.convergence_plan import cell_settings
from meanfield_dropout.limits import LIMITS, LimitConstants

from .finder.decision import decide_asymptotic
from .theory.phases import classify
from .theory.scalings import parse_scaling

#: One scaling per phase for the five-phase check: (τ_n, q_n) expressions, horizon, the
#: predicted limit and wrong limits with constants for them (the phase's own constants are
#: read from the scaling). τ_n, q_n keep every cell at n ≤ 1600 cheap; the constants are
#: chosen so that the limits are well apart (e.g. the Bernoulli step τ = 1 rather than the
#: paper's 0.5, whose limit is within 0.015 of the WGF on this problem).
PHASE_STUDIES = {
    "wgf": dict(tau="0.5*n**-0.5", keep="0.5", horizon=2.0,
                wrong={"jump-poisson": dict(alpha=2.0)}),
    "penalized-wgf": dict(tau="n**-1.5", keep="n**-1", horizon=1.0,
                          wrong={"wgf": {}}),
    "jump-poisson": dict(tau="1.5*n**-0.5", keep="0.5*n**-0.5", horizon=2.0,
                         wrong={"wgf": {}}),
    "jump-bernoulli": dict(tau="1.0", keep="0.3", horizon=4.0,
                           wrong={"wgf": {}}, coupled=("ram", "gd")),
    "critical": dict(tau="n**-1", keep="n**-1", horizon=2.0,
                     wrong={"jump-poisson": {}, "wgf": {}}),
}


def scaling_limit(master_lr_scaling, keep_prob_scaling):
    """Parse a scaling and classify it.

    Parameters
    ----------
    master_lr_scaling, keep_prob_scaling : str
        The scaling: τ_n (master learning rate) and q_n (keep probability) as expressions in
        the width ``n`` (:func:`~phase_diagram.theory.scalings.parse_scaling`).

    Returns
    -------
    scaling : phase_diagram.theory.scalings.Scaling
    phase : str
        The phase, one of :data:`~meanfield_dropout.limits.LIMITS`, ``degenerate`` or
        ``undetermined``.
    constants : dict or None
        ``alpha``, ``beta``, ``tau`` of the predicted limit (None without one).
    """
    scaling = parse_scaling(master_lr_scaling, keep_prob_scaling)
    regime = classify(scaling)
    if regime.phase not in LIMITS:
        return scaling, regime.phase, None
    config = regime.limit_config()
    return scaling, regime.phase, {k: config[k] for k in ("alpha", "beta", "tau")}


def scaling_study(master_lr_scaling, keep_prob_scaling, widths, *, limits=(), force=False,
                  alpha=None, beta=None, tau=None, **options):
    """Distance from dropout along a scaling to its predicted limit, as the width grows.

    Parameters
    ----------
    master_lr_scaling, keep_prob_scaling : str
        τ_n and q_n as expressions in the width ``n``.
    widths : sequence of int
    limits : sequence of str
        Limits to compare with; default: the scaling's predicted limit.
    force : bool
        Allow limits other than the predicted one (and scalings without one).
    alpha, beta, tau : float, optional
        Limit constants replacing the scaling's own (``tau`` is the Bernoulli limit's step).
    **options
        ``repeats``, ``seed``, ``limit_factor`` and ``progress`` of
        :func:`~meanfield_dropout.convergence.convergence_study`; ``horizon`` (default 2) and
        the other fields of :class:`~meanfield_dropout.convergence_plan.CellSettings`.

    Returns
    -------
    study : ConvergenceStudy
    phase : str
        The scaling's phase (``limits`` other than it were compared because of ``force``).

    Raises
    ------
    ValueError
        For a limit other than the predicted one without ``force``, or a scaling without limit
        dynamics and no limit named.
    """
    scaling, phase, constants = scaling_limit(master_lr_scaling, keep_prob_scaling)
    for name in limits:
        check_choice(name, "limit", LIMITS)
    names = list(limits) or ([phase] if phase in LIMITS else [])
    if not names:
        raise ValueError(f"the scaling is {phase}: it has no limit dynamics; name one with "
                         "--limit and its constants with --alpha/--beta/--limit-tau and --force")
    forced = [name for name in names if name != phase]
    if forced and not force:
        raise ValueError(f"the scaling classifies as {phase!r}, not {', '.join(forced)}; "
                         "pass --force to compare anyway")
    constants = dict(constants or {})
    for key, value in (("alpha", alpha), ("beta", beta), ("tau", tau)):
        if value is not None:
            constants[key] = value
    study = _study(scaling, widths, names, LimitConstants(**constants),
                   f"{phase}: τ={master_lr_scaling}, q={keep_prob_scaling}", options)
    return study, phase


#: The keywords of :func:`~meanfield_dropout.convergence.convergence_study` itself, with the
#: old spellings it still accepts.
_STUDY_KEYWORDS = ("repeats", "seed", "limit_factor", "progress", *convergence_study.renamed)


def _study(scaling, widths, limits, constants, label, options):
    """:func:`~meanfield_dropout.convergence.convergence_study` along ``scaling`` with the
    keyword ``options`` of :func:`scaling_study` and :func:`phase_study`."""
    settings, study = _split(limits, constants, options)
    return convergence_study(scaling.tau, scaling.keep, widths, settings, label=label,
                             **study)


def _split(limits, constants, options):
    """(:class:`~meanfield_dropout.convergence_plan.CellSettings`, keywords of
    :func:`~meanfield_dropout.convergence.convergence_study`) of the keyword ``options``."""
    options = dict(options)
    study = {key: options.pop(key) for key in _STUDY_KEYWORDS if key in options}
    return cell_settings(limits, constants, options.pop("horizon", 2.0), options), study


def phase_study(phase, widths, *, repeats=3, seed=0, progress=True, **options):
    """:func:`~meanfield_dropout.convergence.convergence_study` of ``PHASE_STUDIES[phase]``.

    Dropout is compared with the predicted limit (constants from the scaling) and with the
    wrong limits of the table.

    Parameters
    ----------
    phase : str
        One of :data:`~meanfield_dropout.limits.LIMITS`.
    widths : sequence of int
    repeats, seed, progress
        As in :func:`~meanfield_dropout.convergence.convergence_study`.
    **options
        ``limit_factor`` and the fields of
        :class:`~meanfield_dropout.convergence_plan.CellSettings` (``coupled`` and ``horizon``
        default to the table's).

    Returns
    -------
    ConvergenceStudy
    """
    scaling, settings, study = phase_study_arguments(phase, **options)
    spec = PHASE_STUDIES[phase]
    return convergence_study(scaling.tau, scaling.keep, widths, settings,
                             label=f"{phase}: τ={spec['tau']}, q={spec['keep']}",
                             repeats=repeats, seed=seed, progress=progress, **study)


def phase_study_arguments(phase, **options):
    """(scaling, :class:`~meanfield_dropout.convergence_plan.CellSettings`, other keywords of
    :func:`~meanfield_dropout.convergence.convergence_study`) of :func:`phase_study`: the
    predicted limit with the scaling's constants and the table's wrong limits, ``coupled``
    and ``horizon`` the table's unless ``options`` give them."""
    check_choice(phase, "phase", PHASE_STUDIES)
    spec = PHASE_STUDIES[phase]
    scaling, found, constants = scaling_limit(spec["tau"], spec["keep"])
    if found != phase:
        raise ValueError(f"PHASE_STUDIES[{phase!r}] classifies as {found!r}")
    limits = {phase: dict(constants)}
    for name, overrides in spec["wrong"].items():
        limits[name] = dict(constants, **overrides)
    options.setdefault("coupled", spec.get("coupled", ()))
    options.setdefault("horizon", spec["horizon"])
    return (scaling, *_split(limits, LimitConstants(), options))


#: The metric a verdict trusts when the metrics disagree, and why.
TRUSTED_METRIC = "predictor"
_WHY_TRUSTED = ("the predictor error averages over the particles (sampling error O(N^-1/2) "
                "whatever the particle dimension), while W2 between independent particle "
                "subsets has a statistical floor of order k^(-1/p) that hides the dynamical "
                "error (meanfield_dropout.convergence)")


def study_verdict(study, metric=TRUSTED_METRIC):
    """The verdict of a convergence study by the rule of the scans.

    Each cell's distance is its sup over the grid times t > 0 (the scans' ``statistic =
    "max"``); :func:`~phase_diagram.finder.decision.decide_asymptotic` names the limit whose
    distance is clearly falling with n and clearly below the others', or says why it cannot.

    Parameters
    ----------
    study : ConvergenceStudy
    metric : str
        ``"predictor"`` or ``"w2"``.

    Returns
    -------
    AsymptoticDecision
    """
    distances = {name: np.max(study.distances[name][metric][:, :, 1:], axis=2).T
                 for name in study.limits}
    return decide_asymptotic(study.widths, distances)


def verdict_lines(study):
    """Lines stating the verdict of ``study`` on each metric and, when they disagree, which
    one to trust (:data:`TRUSTED_METRIC`)."""
    verdicts = {metric: study_verdict(study, metric) for metric in METRICS}
    lines = [f"  verdict ({metric}, the scans' rule): {v.phase}: {v.reason}"
             for metric, v in verdicts.items()]
    if len({v.phase for v in verdicts.values()}) > 1:
        lines.append(f"  the metrics disagree: trust {TRUSTED_METRIC}'s verdict "
                     f"({verdicts[TRUSTED_METRIC].phase}): {_WHY_TRUSTED}")
    return lines
