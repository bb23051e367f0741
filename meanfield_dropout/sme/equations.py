"""Dropout gradient descent, the order-1 and order-2 SMEs, and gradient descent on L_S.

Dropout (step η, time t = Nη):  θ_N = θ_{N−1} − η ∇R^drop(θ_{N−1}; δ_N).

SMEs (Theorem 1 of Zhang, Li, Luo & Xu 2024), integrated by Euler–Maruyama with SDE step
h ≤ η (time t = N_h h):

    Θ ← Θ + h b(Θ) + √(hη) Σ(Θ)^(1/2) Z,
    b = −∇L_S                      (order 1),
    b = −∇L_S − (η/2) H ∇L_S       (order 2, exact Hessian-vector product).

Σ^(1/2) Z is drawn by the matrix-free sampler of :mod:`.covariance`. With the same seed both
orders consume identical Gaussians (common random numbers). With h = η the scheme is the
paper's EM discretisation; resolving the weak orders 1 and 2 needs h ≪ η, since EM with h = η
matches dropout's mean far better than O(η). Every step is one kernel of
:mod:`meanfield_dropout.kernels.sme_steps` on the core kernels
(:mod:`meanfield_dropout.kernels.core`); a diverging run raises the engine's
:class:`~meanfield_dropout.engine.DivergenceError` naming the method.
"""
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..runtime import tables
from ..runtime.memory import announce_cost
from ..runtime.compiling import compile_once, run_kernel
from ..validation import check_choice, check_int, check_positive, renamed_keywords
from ..kernels.twins import for_run
from ..kernels.sme_model import _dropout_replicas
from ..kernels.sme_steps import _first_bad, _gd_kernel, _losses_kernel, _sme_kernel
from ..engine import DivergenceError
from .cost import run_seconds
from .covariance import draw_standard_normals
from .model import _kernel_threads, draw_keep

#: Parameters with absolute value above this count as diverged.
DIVERGENCE_BOUND = 1e8

# stream indices of np.random.SeedSequence(seed).spawn(2)
_MASK_STREAM, _GAUSSIAN_STREAM = 0, 1

@dataclass
class Trajectories:
    """Recorded runs.

    Attributes
    ----------
    times : ndarray, shape (n_records,)
        Times t (dropout step count times η).
    loss : ndarray, shape (repeats, n_records)
        Plain training loss R_S at the recorded times.
    params : ndarray or None, shape (repeats, n_records, D)
        Parameters at the recorded times, if requested.
    final : ndarray, shape (repeats, D)
        Parameters at the final time.
    """

    __repr__ = tables.compact_repr

    def to_frame(self):
        """The losses as a tidy table (pandas, the ``table`` extra): one row per run and
        recorded time; columns ``run``, ``time``, ``loss``."""
        return tables.frame(dict(run=r, time=float(t), loss=float(self.loss[r, i]))
                            for r in range(self.loss.shape[0])
                            for i, t in enumerate(self.times))

    times: np.ndarray
    loss: np.ndarray
    params: np.ndarray
    final: np.ndarray


def _dropout_steps(problem, thetas, lr, keep):
    """One dropout step θ ← θ − η ∇R^drop(θ; δ) for every replica (in place).

    ``keep`` (repeats, width) holds the keep decisions (True: mask entry 1/p).
    """
    with _kernel_threads(problem) as net:
        run_kernel(_dropout_replicas, (net, thetas, keep, lr * net.scale, thetas), "sme",
                   thetas.dtype.name)


def _gd_steps(problem, thetas, lr):
    """One GD step on L_S for every replica (in place)."""
    with _kernel_threads(problem) as net:
        run_kernel(_gd_kernel, (net, thetas, lr * net.scale), "sme", thetas.dtype.name)


def _sme_steps(problem, thetas, lr, h, order, z, G):
    """One Euler-Maruyama step of the order-1 or order-2 SME for every replica (in place)."""
    with _kernel_threads(problem) as net:
        run_kernel(_sme_kernel, (net, thetas, lr, h, order, z, G), "sme", thetas.dtype.name)


def _rng(seed, stream):
    seed = check_int(seed, "seed", low=0)
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[stream])


def _start(problem, params0, repeats):
    params0 = problem.blocks(params0, "params0")
    repeats = check_int(repeats, "repeats", low=1)
    return np.repeat(params0[None], repeats, axis=0)


def _drive(problem, thetas, steps, loss_every, record_params, step, time_per_step,
           method, progress, kernel, substeps=1):
    """Advance ``thetas`` by ``step(thetas, k)`` for k = 0..steps−1, recording every few steps.

    With ``progress``, the estimate of the run (:func:`~meanfield_dropout.sme.cost.run_seconds`
    of ``kernel``) is printed first when long. Raises the engine's
    :class:`~meanfield_dropout.engine.DivergenceError` (with ``method`` as its variant) when a
    parameter leaves the finite range.
    """
    steps = check_int(steps, "steps", low=1)
    loss_every = check_int(loss_every, "loss_every", low=1)
    if progress:
        announce_cost(run_seconds(problem, kernel, steps, thetas.shape[0], loss_every, substeps),
                      f"{method}: {thetas.shape[0]} run(s) of {steps} steps")
    record_at = list(range(0, steps + 1, loss_every))
    if record_at[-1] != steps:
        record_at.append(steps)
    loss = np.empty((thetas.shape[0], len(record_at)))
    params = (np.empty((thetas.shape[0], len(record_at), problem.n_params))
              if record_params else None)
    slot = 0
    # the first kernel of every run: a cold cache is announced before the bar
    with _kernel_threads(problem) as net:
        losses = for_run(_losses_kernel)
        compile_once(losses, (net, thetas), "sme", thetas.dtype.name)
    for done in tqdm(range(steps + 1), desc=method, disable=not progress, leave=False):
        if done > 0:
            step(thetas, done - 1)
            bad = _first_bad(thetas, DIVERGENCE_BOUND)
            if bad >= 0:
                raise DivergenceError(done, method, f"run {bad} has a parameter beyond "
                                      f"{DIVERGENCE_BOUND:g} or non-finite; lower lr")
        if done == record_at[slot]:
            with _kernel_threads(problem) as net:
                loss[:, slot] = losses(net, thetas)
            if record_params:
                params[:, slot] = thetas.reshape(thetas.shape[0], -1)
            slot += 1
    times = np.array(record_at, dtype=float) * time_per_step
    return Trajectories(times, loss, params, thetas.reshape(thetas.shape[0], -1).copy())


@renamed_keywords(n_runs="repeats")
def simulate_dropout(problem, params0, lr, steps, repeats=1, seed=0, loss_every=1,
                     record_params=False, progress=False, keep=None):
    """Full-batch dropout gradient descent, ``repeats`` independent runs from θ_0.

    θ_N = θ_{N−1} − η ∇R^drop(θ_{N−1}; δ_N) (Zhang, Li, Luo & Xu 2024) with a fresh mask δ_N
    per step and run: the engine's ``dropout`` rule with master_lr ηκ on the core kernels.

    Parameters
    ----------
    problem : DropoutProblem
    params0 : array_like, shape (D,)
        θ_0, shared by all runs.
    lr : float
        η > 0.
    steps : int
        Number of dropout steps N (final time N η).
    repeats : int
        Independent runs (fresh masks each).
    seed : int
        Seed of the masks: the keep decisions of a step are
        ``rng.random((repeats, width)) < p`` from ``SeedSequence(seed).spawn(2)[0]``.
    loss_every : int
        Record R_S (and parameters) every this many steps.
    record_params : bool
        Keep the parameter history.
    progress : bool
        Show a tqdm bar, after the estimated duration on stderr when it exceeds
        :data:`~meanfield_dropout.runtime.memory.ANNOUNCE_SECONDS`
        (:func:`~meanfield_dropout.sme.cost.run_seconds`).
    keep : array_like of bool, shape (steps, repeats, width), optional
        Explicit keep decisions (True: mask entry 1/p) instead of drawing them from ``seed``,
        as the engine's :class:`~meanfield_dropout.noise.ExplicitNoise`.

    Returns
    -------
    Trajectories
    """
    lr = check_positive(lr, "lr")
    thetas = _start(problem, params0, repeats)
    if keep is not None:
        keep = np.asarray(keep)
        if keep.dtype != np.bool_ or keep.shape != (steps, thetas.shape[0], problem.width):
            raise ValueError(f"keep must be a boolean array of shape ({steps}, "
                             f"{thetas.shape[0]}, {problem.width}), got {keep.dtype} "
                             f"{keep.shape}")
    rng = _rng(seed, _MASK_STREAM)

    def step(th, k):
        decisions = draw_keep(rng, problem.keep_prob, (th.shape[0], problem.width)) \
            if keep is None else np.ascontiguousarray(keep[k])
        _dropout_steps(problem, th, lr, decisions)

    return _drive(problem, thetas, steps, loss_every, record_params, step, lr,
                  "dropout", progress, "dropout")


def simulate_modified_gd(problem, params0, lr, steps, loss_every=1, record_params=False,
                         progress=False):
    """Deterministic gradient descent on L_S (the drift of dropout without its noise).

    The engine's ``penalized`` rule with master_lr ηκ and penalty cκ. Arguments as
    :func:`simulate_dropout`; returns one run.
    """
    lr = check_positive(lr, "lr")
    thetas = _start(problem, params0, 1)

    def step(th, k):
        _gd_steps(problem, th, lr)

    return _drive(problem, thetas, steps, loss_every, record_params, step, lr,
                  "GD on L_S", progress, "gd")


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


@renamed_keywords(n_runs="repeats")
def simulate_sme(problem, params0, lr, steps, sde_step=None, order=1, repeats=1, seed=0,
                 loss_every=1, record_params=False, progress=False):
    """Euler-Maruyama simulation of the order-1 or order-2 SME of dropout.

    Parameters
    ----------
    problem : DropoutProblem
    params0 : array_like, shape (D,)
        Theta_0, shared by all runs.
    lr : float
        eta > 0, the dropout learning rate the SME models (it sets the noise sqrt(eta)).
    steps : int
        Final time is steps * eta, as for ``steps`` dropout steps.
    sde_step : float, optional
        EM step h in (0, eta] with eta/h an integer; default h = eta (the paper's scheme).
    order : {1, 2}
        SME order; order 2 adds the drift -(eta/2) H grad L_S (exact Hessian-vector product).
    repeats : int
        Independent runs.
    seed : int
        Seed of the Gaussians; equal seeds give both orders identical increments.
    loss_every : int
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
    thetas = _start(problem, params0, repeats)
    rng = _rng(seed, _GAUSSIAN_STREAM)

    def step(th, k):
        for _ in range(substeps):
            z, G = draw_standard_normals(rng, problem.width, th.shape[0])
            _sme_steps(problem, th, lr, h, order, z, G)

    return _drive(problem, thetas, steps, loss_every, record_params, step, lr,
                  f"order-{order} SME", progress, f"sme{order}", substeps)
