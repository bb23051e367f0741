"""Dropout gradient descent, the order-1 and order-2 SMEs, and gradient descent on L_S.

Dropout (step eta, time t = N eta):  theta_N = theta_{N-1} - eta grad R^drop(theta_{N-1}; delta_N).

SMEs (Theorem 1 of Zhang, Li, Luo, Xu 2024), integrated by Euler-Maruyama with SDE step
h <= eta (time t = N_h h):

    Theta <- Theta + h b(Theta) + sqrt(h eta) Sigma(Theta)^(1/2) Z,
    b = -grad L_S                            (order 1),
    b = -grad L_S - (eta/2) H grad L_S       (order 2, exact Hessian-vector product).

Sigma^(1/2) Z is drawn by the matrix-free sampler of :mod:`.covariance`. With the same seed
both orders consume identical Gaussians (common random numbers). With h = eta the scheme is
the paper's EM discretisation; ``shared/theory/sme.md`` section 3.1 explains why h << eta is
needed to see the weak orders.
"""
from dataclasses import dataclass

import numpy as np
from numba import njit
from tqdm.auto import tqdm

from .. import engine
from .._validate import check_choice, check_int, check_positive
from .covariance import _noise_coefficients, draw_standard_normals
from .hessian import _hvp
from .model import (_activations, _backprop, _drift_coefficients, _dropout_grad,
                    _modified_grad, _modified_loss, _output, draw_masks)

#: Parameters with absolute value above this count as diverged.
DIVERGENCE_BOUND = 1e8

# stream indices of np.random.SeedSequence(seed).spawn(2)
_MASK_STREAM, _GAUSSIAN_STREAM = 0, 1


class DivergenceError(engine.DivergenceError):
    """A run left the finite range; ``step`` and ``variant`` (the method) say where."""

    def __init__(self, step, variant, detail):
        FloatingPointError.__init__(self, f"{variant} diverged at step {step}: {detail}")
        self.step = step
        self.variant = variant


@dataclass
class Trajectories:
    """Recorded runs.

    Attributes
    ----------
    times : ndarray, shape (n_records,)
        Times t (dropout step count times eta).
    loss : ndarray, shape (n_runs, n_records)
        Plain training loss R_S at the recorded times.
    params : ndarray or None, shape (n_runs, n_records, D)
        Parameters at the recorded times, if requested.
    final : ndarray, shape (n_runs, D)
        Parameters at the final time.
    """

    times: np.ndarray
    loss: np.ndarray
    params: np.ndarray
    final: np.ndarray


@njit(cache=True)
def _first_bad(thetas, bound):
    """Index of the first replica with a non-finite or huge entry, or -1."""
    for j in range(thetas.shape[0]):
        for k in range(thetas.shape[1]):
            for l in range(thetas.shape[2]):
                v = thetas[j, k, l]
                if not (abs(v) < bound):
                    return j
    return -1


@njit(cache=True)
def _dropout_steps(X, Y, thetas, K, kappa, code, lr, masks):
    """One dropout GD step for every replica (in place)."""
    for j in range(thetas.shape[0]):
        thetas[j] -= lr * _dropout_grad(X, Y, thetas[j], K, kappa, code, masks[j])


@njit(cache=True)
def _gd_steps(X, Y, thetas, K, kappa, code, c_pen, lr):
    """One GD step on L_S for every replica (in place)."""
    for j in range(thetas.shape[0]):
        thetas[j] -= lr * _modified_grad(X, Y, thetas[j], K, kappa, code, c_pen)


@njit(cache=True)
def _sme_steps(X, Y, thetas, K, kappa, code, c_pen, lr, h, order, z, G):
    """One Euler-Maruyama step of the order-1 or order-2 SME for every replica (in place)."""
    noise_scale = np.sqrt(h * lr)
    for j in range(thetas.shape[0]):
        blocks = thetas[j]
        s, ds = _activations(X, blocks, K, code)
        res = _output(s, blocks, K, kappa, np.ones(s.shape[1])) - Y
        V = _drift_coefficients(s, blocks, K, kappa, c_pen, res)
        grad = _backprop(X, s, ds, blocks, K, kappa, V)
        noise = _backprop(X, s, ds, blocks, K, kappa,
                          _noise_coefficients(s, blocks, K, kappa, c_pen, V, z[j], G[j]))
        drift = -grad
        if order == 2:
            drift -= 0.5 * lr * _hvp(X, Y, blocks, K, kappa, code, c_pen, grad)
        thetas[j] += h * drift + noise_scale * noise


@njit(cache=True)
def _losses(X, Y, thetas, K, kappa, code):
    """R_S of every replica."""
    out = np.empty(thetas.shape[0])
    for j in range(thetas.shape[0]):
        out[j] = _modified_loss(X, Y, thetas[j], K, kappa, code, 0.0)
    return out


def _rng(seed, stream):
    seed = check_int(seed, "seed", low=0)
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[stream])


def _start(problem, params0, n_runs):
    params0 = problem.blocks(params0, "params0")
    n_runs = check_int(n_runs, "n_runs", low=1)
    return np.repeat(params0[None], n_runs, axis=0)


def _drive(problem, thetas, n_steps, record_every, record_params, step, time_per_step,
           method, progress):
    """Advance ``thetas`` by ``step(thetas)`` ``n_steps`` times, recording every few steps."""
    n_steps = check_int(n_steps, "n_steps", low=1)
    record_every = check_int(record_every, "record_every", low=1)
    X, Y, K = problem.inputs, problem.targets, problem.output_dim
    record_at = list(range(0, n_steps + 1, record_every))
    if record_at[-1] != n_steps:
        record_at.append(n_steps)
    loss = np.empty((thetas.shape[0], len(record_at)))
    params = (np.empty((thetas.shape[0], len(record_at), problem.n_params))
              if record_params else None)
    slot = 0
    for n in tqdm(range(n_steps + 1), desc=method, disable=not progress, leave=False):
        if n > 0:
            step(thetas)
            bad = _first_bad(thetas, DIVERGENCE_BOUND)
            if bad >= 0:
                raise DivergenceError(n, method, f"run {bad} has a parameter beyond "
                                      f"{DIVERGENCE_BOUND:g} or non-finite; lower lr")
        if n == record_at[slot]:
            loss[:, slot] = _losses(X, Y, thetas, K, problem.kappa, problem.code)
            if record_params:
                params[:, slot] = thetas.reshape(thetas.shape[0], -1)
            slot += 1
    times = np.array(record_at, dtype=float) * time_per_step
    return Trajectories(times, loss, params, thetas.reshape(thetas.shape[0], -1).copy())


def simulate_dropout(problem, params0, lr, n_steps, n_runs=1, seed=0, record_every=1,
                     record_params=False, progress=False):
    """Full-batch dropout gradient descent, ``n_runs`` independent runs from theta_0.

    Parameters
    ----------
    problem : DropoutProblem
    params0 : array_like, shape (D,)
        theta_0, shared by all runs.
    lr : float
        eta > 0.
    n_steps : int
        Number of dropout steps N (final time N eta).
    n_runs : int
        Independent runs (fresh masks each).
    seed : int
        Seed of the masks.
    record_every : int
        Record R_S (and parameters) every this many steps.
    record_params : bool
        Keep the parameter history.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    Trajectories
    """
    lr = check_positive(lr, "lr")
    thetas = _start(problem, params0, n_runs)
    rng = _rng(seed, _MASK_STREAM)
    X, Y, K = problem.inputs, problem.targets, problem.output_dim

    def step(th):
        masks = draw_masks(rng, problem.keep_prob, (th.shape[0], problem.width))
        _dropout_steps(X, Y, th, K, problem.kappa, problem.code, lr, masks)

    return _drive(problem, thetas, n_steps, record_every, record_params, step, lr,
                  "dropout", progress)


def simulate_modified_gd(problem, params0, lr, n_steps, record_every=1, record_params=False,
                         progress=False):
    """Deterministic gradient descent on L_S (the drift of dropout without its noise).

    Arguments as :func:`simulate_dropout`; returns one run.
    """
    lr = check_positive(lr, "lr")
    thetas = _start(problem, params0, 1)
    X, Y, K = problem.inputs, problem.targets, problem.output_dim

    def step(th):
        _gd_steps(X, Y, th, K, problem.kappa, problem.code, problem.penalty, lr)

    return _drive(problem, thetas, n_steps, record_every, record_params, step, lr,
                  "GD on L_S", progress)


def sde_substeps(lr, sde_step):
    """Number k of SDE steps h per learning-rate interval eta; requires h <= eta, eta/h integer."""
    lr = check_positive(lr, "lr")
    if sde_step is None:
        return 1
    sde_step = check_positive(sde_step, "sde_step")
    if sde_step > lr:
        raise ValueError(f"sde_step must be in (0, lr] = (0, {lr}], got {sde_step}")
    k = round(lr / sde_step)
    if abs(k * sde_step - lr) > 1e-9 * lr:
        raise ValueError(f"lr / sde_step must be an integer, got {lr} / {sde_step}")
    return k


def simulate_sme(problem, params0, lr, n_steps, sde_step=None, order=1, n_runs=1, seed=0,
                 record_every=1, record_params=False, progress=False):
    """Euler-Maruyama simulation of the order-1 or order-2 SME of dropout.

    Parameters
    ----------
    problem : DropoutProblem
    params0 : array_like, shape (D,)
        Theta_0, shared by all runs.
    lr : float
        eta > 0, the dropout learning rate the SME models (it sets the noise sqrt(eta)).
    n_steps : int
        Final time is n_steps * eta, as for ``n_steps`` dropout steps.
    sde_step : float, optional
        EM step h in (0, eta] with eta/h an integer; default h = eta (the paper's scheme).
    order : {1, 2}
        SME order; order 2 adds the drift -(eta/2) H grad L_S (exact Hessian-vector product).
    n_runs : int
        Independent runs.
    seed : int
        Seed of the Gaussians; equal seeds give both orders identical increments.
    record_every : int
        Record every this many eta-intervals.
    record_params, progress : bool
        As :func:`simulate_dropout`.

    Returns
    -------
    Trajectories
    """
    lr = check_positive(lr, "lr")
    substeps = sde_substeps(lr, sde_step)
    h = lr / substeps
    order = check_choice(order, "order", (1, 2))
    thetas = _start(problem, params0, n_runs)
    rng = _rng(seed, _GAUSSIAN_STREAM)
    X, Y, K = problem.inputs, problem.targets, problem.output_dim

    def step(th):
        for _ in range(substeps):
            z, G = draw_standard_normals(rng, problem.width, th.shape[0])
            _sme_steps(X, Y, th, K, problem.kappa, problem.code, problem.penalty, lr, h,
                       order, z, G)

    return _drive(problem, thetas, n_steps, record_every, record_params, step, lr,
                  f"order-{order} SME", progress)
