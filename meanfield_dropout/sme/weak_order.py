"""Weak-error study: ||E Theta_t - E theta_t|| against the learning rate, for SMEs of order 1 and 2.

For each keep probability p and learning rate eta, ``repeats`` dropout runs and ``repeats``
runs of each SME start from the same theta_0 and are compared at a common time T. Four devices keep
the Monte Carlo floor below the errors being measured:

* common random numbers: the order-1 and order-2 SMEs consume the same Gaussians;
* coupling of dropout and SME runs: run j's Brownian increment over each dropout interval has
  first-chaos component zeta_k = Phi^{-1}(U_k), where U_k < p is run j's keep decision, so
  zeta_k is exactly N(0, 1) and decreasing in xi_k = delta_k - 1. Dropout moves by
  -eta A1 xi and the SME by +sqrt(h eta) sqrt(c) A1 z, so this makes the two increments
  positively correlated. The substeps are a Gaussian bridge around zeta, and the pair
  components xi_k xi_r stay independent. Each process keeps its exact law; only the joint
  law of the pair (theta, Theta) changes;
* control variates with exactly zero mean: along the deterministic GD-on-L_S path theta_bar,
  each run carries a linear process y driven by the same noise as the run,
  y <- (I - s H(theta_bar)) y + (noise linearised at theta_bar), which removes the O(sqrt(eta))
  fluctuations and leaves O(eta) ones (E y = 0 because coefficients are deterministic);
* Richardson extrapolation of the Euler-Maruyama step (on by default): a coarse SME run with step 2h
  driven by the summed Gaussians gives 2 E Theta^h - E Theta^{2h}, whose step bias is O(h^2)
  (the EM step must be much finer than eta to resolve the orders of Zhang, Li, Luo & Xu
  (2024), Thm 1).
"""

import numpy as np
from scipy.special import ndtri
from tqdm.auto import tqdm

from ..runtime import results, tables
from ..runtime.memory import announce_cost
from ..validation import (check_array, check_int, check_positive, renamed_keywords,
                          seed_sequence)
from ..stats import loglog_fit
from ..kernels.sme_noise import _factor
from ..kernels.sme_steps import _first_bad
from .cost import weak_order_seconds
from .covariance import _noise_parts, check_dense_size, draw_standard_normals
from .equations import (DIVERGENCE_BOUND, DivergenceError, _dropout_steps, _sme_steps,
                        sde_substeps)
from .hessian import _dense_hessian
from .model import _modified_grad


@renamed_keywords(n_runs="repeats")
@results.result_class
class WeakOrderResult:
    """Output of :func:`weak_error_study`.

    Attributes
    ----------
    lrs : ndarray, shape (n_lr,)
    keep_probs : ndarray, shape (n_p,)
    errors : ndarray, shape (2, n_p, n_lr)
        ||E Theta_T - E theta_T||_2 for the order-1 (index 0) and order-2 (index 1) SME.
    floors : ndarray, shape (2, n_p, n_lr)
        Monte Carlo standard error of that difference (the noise floor).
    slopes, slope_errors : ndarray, shape (2, n_p)
        Least-squares log-log slopes and their standard errors.
    time, sde_step : float
        Comparison time T and the EM step h.
    repeats : int
    """

    def to_frame(self):
        """The weak errors as a tidy table (pandas, the ``table`` extra): one row per SME
        order, keep probability and learning rate; columns ``order``, ``keep_prob``, ``lr``,
        ``error``, ``floor`` (its Monte Carlo standard error), ``slope`` and
        ``slope_error`` (of that order and keep probability), ``time`` T and ``repeats``."""
        return tables.frame(
            dict(order=k + 1, keep_prob=float(p), lr=float(lr),
                 error=float(self.errors[k, j, i]), floor=float(self.floors[k, j, i]),
                 slope=float(self.slopes[k, j]), slope_error=float(self.slope_errors[k, j]),
                 time=float(self.time), repeats=int(self.repeats))
            for k in range(self.errors.shape[0]) for j, p in enumerate(self.keep_probs)
            for i, lr in enumerate(self.lrs))

    lrs: np.ndarray
    keep_probs: np.ndarray
    errors: np.ndarray
    floors: np.ndarray
    slopes: np.ndarray
    slope_errors: np.ndarray
    time: float
    sde_step: float
    repeats: int


def _pair_products(values, iu, ju):
    return values[:, iu] * values[:, ju]


def _one_setting(problem, blocks0, lr, n_steps, substeps, repeats, seeds, control_variate,
                 extrapolate, coupling):
    """Per-run estimators (repeats, D) for dropout, order-1 SME and order-2 SME."""
    c = problem.penalty
    m, D = problem.width, problem.n_params
    iu, ju = np.triu_indices(m, 1)
    h = lr / substeps
    mask_rng = np.random.default_rng(seeds[0])
    gauss_rng = np.random.default_rng(seeds[1])
    start = np.repeat(blocks0[None], repeats, axis=0)
    drop, fine1, fine2 = start.copy(), start.copy(), start.copy()
    coarse1, coarse2 = start.copy(), start.copy()
    y_drop, y_fine, y_coarse = (np.zeros((repeats, D)) for _ in range(3))
    theta_bar = blocks0.copy()
    for step in range(1, n_steps + 1):
        if control_variate:
            H = _dense_hessian(problem, theta_bar)
            A1, A2 = _factor(*_noise_parts(problem, theta_bar))
        uniforms = mask_rng.random((repeats, m))
        masks = (uniforms < problem.keep_prob) / problem.keep_prob
        if coupling:
            zeta = ndtri(np.maximum(uniforms, np.finfo(float).tiny))
            bridge = gauss_rng.standard_normal((substeps, repeats, m))
            bridge += zeta / np.sqrt(substeps) - bridge.mean(axis=0)
        _dropout_steps(problem, drop, lr, uniforms < problem.keep_prob)
        if control_variate:
            xi = masks - 1.0
            y_drop += -lr * (y_drop @ H) - lr * (xi @ A1.T + _pair_products(xi, iu, ju) @ A2.T)
        z_sum, G_sum = 0.0, 0.0
        for sub in range(substeps):
            z, G = draw_standard_normals(gauss_rng, m, repeats)
            if coupling:
                z = bridge[sub]
            for thetas, order in ((fine1, 1), (fine2, 2)):
                _sme_steps(problem, thetas, lr, h, order, z, G)
            if control_variate:
                lin = np.sqrt(c) * z @ A1.T + c * G[:, iu, ju] @ A2.T
                y_fine += -h * (y_fine @ H) + np.sqrt(h * lr) * lin
            if extrapolate:
                z_sum, G_sum = z_sum + z, G_sum + G
                if sub % 2 == 1:
                    zc, Gc = z_sum / np.sqrt(2.0), G_sum / np.sqrt(2.0)
                    for thetas, order in ((coarse1, 1), (coarse2, 2)):
                        _sme_steps(problem, thetas, lr, 2 * h, order, zc, Gc)
                    if control_variate:
                        lin = np.sqrt(c) * zc @ A1.T + c * Gc[:, iu, ju] @ A2.T
                        y_coarse += -2 * h * (y_coarse @ H) + np.sqrt(2 * h * lr) * lin
                    z_sum, G_sum = 0.0, 0.0
        for name, thetas in (("dropout", drop), ("order-1 SME", fine1), ("order-2 SME", fine2),
                             ("coarse order-1 SME", coarse1), ("coarse order-2 SME", coarse2)):
            bad = _first_bad(thetas, DIVERGENCE_BOUND)
            if bad >= 0:
                raise DivergenceError(step, name, f"run {bad} at lr={lr}, p={problem.keep_prob}")
        if control_variate:
            theta_bar = theta_bar - lr * _modified_grad(problem, theta_bar)
    est_drop = drop.reshape(repeats, D) - y_drop
    est = []
    for fine, coarse in ((fine1, coarse1), (fine2, coarse2)):
        e = fine.reshape(repeats, D) - y_fine
        if extrapolate:
            e = 2.0 * e - (coarse.reshape(repeats, D) - y_coarse)
        est.append(e)
    return est_drop, est[0], est[1]


def default_sde_step(lrs, sde_step=None):
    """The EM step h of a weak-error study: ``sde_step`` (checked > 0), by default
    min(lrs)/16."""
    return min(lrs) / 16 if sde_step is None else check_positive(sde_step, "sde_step")


def step_plan(lrs, time, sde_step, extrapolate):
    """[(η, steps T/η, SDE substeps η/h)] of a weak-error study (ValueError when T/η or, with
    ``extrapolate``, an odd η/h is not a positive integer)."""
    plan = []
    for lr in lrs:
        n_steps = round(time / lr)
        if n_steps < 1 or abs(n_steps * lr - time) > 1e-9 * time:
            raise ValueError(f"time / lr must be a positive integer, got {time} / {lr}")
        substeps = sde_substeps(float(lr), sde_step)
        if extrapolate and substeps % 2:
            raise ValueError(f"with extrapolate=True, lr / sde_step must be even, got "
                             f"{lr} / {sde_step} = {substeps}")
        plan.append((float(lr), n_steps, substeps))
    return plan


@renamed_keywords(n_runs="repeats")
def weak_error_study(problem, params0, lrs, keep_probs, time=1.0, sde_step=None, repeats=2000,
                     seed=0, control_variate=True, coupling=True, extrapolate=True,
                     progress=True):
    """Weak error ||E Theta_T - E theta_T||_2 of the order-1 and order-2 SMEs over (eta, p).

    Parameters
    ----------
    problem : DropoutProblem
        Data and network; its keep probability is replaced by each of ``keep_probs``.
    params0 : array_like, shape (D,)
        theta_0 = Theta_0, shared by every run.
    lrs : sequence of float
        Learning rates eta (> 0); T / eta and eta / h must be integers.
    keep_probs : sequence of float
        Keep probabilities p in (0, 1].
    time : float
        Comparison time T (> 0).
    sde_step : float, optional
        EM step h, at most min(lrs); default min(lrs) / 16.
    repeats : int
        Runs per process and setting.
    seed : int
    control_variate, coupling, extrapolate : bool
        Use the zero-mean linear control variates, the dropout-SME coupling and the
        Richardson EM extrapolation (see the module docstring). Control variates need dense
        D x D Hessians.
    progress : bool
        Show a tqdm bar over settings, after the estimated duration on stderr when it
        exceeds :data:`~meanfield_dropout.runtime.memory.ANNOUNCE_SECONDS`
        (:func:`~meanfield_dropout.sme.cost.weak_order_seconds`).

    Returns
    -------
    WeakOrderResult
    """
    lrs = np.sort(check_array(lrs, "lrs", 1))
    if lrs.size < 2 or np.any(lrs <= 0) or np.any(np.diff(lrs) == 0):
        raise ValueError(f"lrs must hold >= 2 distinct learning rates > 0, got {lrs}")
    keep_probs = check_array(keep_probs, "keep_probs", 1)
    for p in keep_probs:
        problem.with_keep_prob(float(p))
    time = check_positive(time, "time")
    sde_step = default_sde_step(lrs, sde_step)
    repeats = check_int(repeats, "repeats", low=2)
    blocks0 = problem.blocks(params0, "params0").copy()
    if control_variate:
        check_dense_size(problem)
    plan = step_plan(lrs, time, sde_step, extrapolate)
    if progress:
        announce_cost(weak_order_seconds(problem, plan, keep_probs, repeats, extrapolate),
                      f"weak_error_study of {len(keep_probs) * len(lrs)} settings x {repeats} "
                      "runs")
    streams = seed_sequence(seed).spawn(len(keep_probs) * len(lrs))
    errors = np.empty((2, len(keep_probs), len(lrs)))
    floors = np.empty_like(errors)
    bar = tqdm(total=len(keep_probs) * len(lrs), desc="weak order", disable=not progress)
    for a, p in enumerate(keep_probs):
        prob = problem.with_keep_prob(float(p))
        for b, (lr, n_steps, substeps) in enumerate(plan):
            seeds = streams[a * len(lrs) + b].spawn(2)
            est_drop, est1, est2 = _one_setting(prob, blocks0, lr, n_steps, substeps, repeats,
                                                seeds, control_variate, extrapolate,
                                                coupling)
            for o, est in enumerate((est1, est2)):
                diff = est - est_drop
                errors[o, a, b] = np.linalg.norm(diff.mean(axis=0))
                floors[o, a, b] = np.sqrt(np.sum(diff.var(axis=0, ddof=1)) / repeats)
            bar.update()
    bar.close()
    slopes = np.empty((2, len(keep_probs)))
    slope_errors = np.empty_like(slopes)
    for o in range(2):
        for a in range(len(keep_probs)):
            slopes[o, a], slope_errors[o, a], _ = loglog_fit(lrs, errors[o, a])
    return WeakOrderResult(lrs, keep_probs, errors, floors, slopes, slope_errors, time,
                           float(sde_step), repeats)
