"""One cell (keep probability q, repeat) of the MNIST experiment: coupled SGD runs in segments,
with risks, accuracies and curvature logged between segments.

The runs of a cell are driven by :func:`~meanfield_dropout.engine.simulate` in segments of
``loss_every`` steps, each from the previous state (``initial=``) and on explicit noise
(:class:`~meanfield_dropout.noise.ExplicitNoise`): the minibatches and masks of the whole run
are planned from the repeat's ``SeedSequence`` and drawn segment by segment in step order,
so a segmented run follows exactly the path of one unsegmented call on the same noise. The
plan depends only on the repeat (not on q or the variant): every variant of a repeat sees
the same initialisation and batches, and the masks of every q come from the same uniforms
(M_i = [U_i < q]), as the coupling of the paper's experiments.
"""
import time

import numpy as np

from ..runtime import results
from ..validation import seed_sequence
from ..curvature import batch_sharpness, sharpness
from ..engine import DivergenceError, simulate
from ..kernels.variants import FORWARD_MASK, MASKS
from ..network import init_particles, predict
from ..noise import ExplicitNoise

#: The splits on which risk and accuracy are logged; ``batch`` is the step's minibatch.
SPLITS = ("batch", "train", "val", "test")
#: The curvature series of a cell (see :class:`CellResult`).
CURVATURE = ("sharpness", "lanczos_residual", "lanczos_iterations", "batch_sharpness",
             "batch_sharpness_se", "masked_batch_sharpness", "masked_batch_sharpness_se")


class NoisePlan:
    """The minibatches and masks of one repeat, drawn in step order segment by segment.

    Parameters
    ----------
    seed : numpy.random.SeedSequence
        The repeat's noise seed; spawned into batch, mask and forward-mask streams.
    width, points, batch_size, keep_prob : int, int, int, float
    forward : bool
        Whether the independent forward mask M' (``pn``, ``pn_ram``) is drawn.
    """

    def __init__(self, seed, *, width, points, batch_size, keep_prob, forward):
        batch_seq, mask_seq, forward_seq = seed.spawn(3)
        self._batch = np.random.default_rng(batch_seq)
        self._mask = np.random.default_rng(mask_seq)
        self._forward = np.random.default_rng(forward_seq) if forward else None
        self.width, self.points, self.batch_size = width, points, batch_size
        self.keep_prob = keep_prob

    def next(self, steps):
        """The :class:`ExplicitNoise` of the next ``steps`` steps."""
        batches = np.stack([self._batch.choice(self.points, self.batch_size, replace=False)
                            for _ in range(steps)]) if self.batch_size < self.points else None
        masks = self._mask.random((steps, self.width)) < self.keep_prob
        forward = None if self._forward is None else \
            self._forward.random((steps, self.width)) < self.keep_prob
        return ExplicitNoise(masks, forward, batches)


@results.result_class
class CellResult:
    """Logs of one (q, repeat) cell.

    Attributes
    ----------
    keep_prob : float
    repeat : int
    variants : tuple of str
    log_steps : ndarray (L,)
        Steps k at which the parameters after k steps were evaluated.
    risk, accuracy : dict split -> ndarray (V, L)
        Unmasked mean loss and accuracy per variant on the splits of :data:`SPLITS` (NaN
        after a divergence).
    curvature_steps : ndarray (S,)
    curvature : dict name -> ndarray (V, S)
        The series of :data:`CURVATURE` (empty arrays when not tracked).
    diverged : ndarray of int (V,)
        Step at which a variant diverged, −1 if it did not.
    seconds : float
        Wall time of the cell.
    """

    keep_prob: float
    repeat: int
    variants: tuple
    log_steps: np.ndarray
    risk: dict
    accuracy: dict
    curvature_steps: np.ndarray
    curvature: dict
    diverged: np.ndarray
    seconds: float


def _risk_and_accuracy(f, targets):
    """Mean loss and accuracy of outputs ``f`` (m,) or (m, K) against the targets."""
    if targets.ndim == 1:           # labels ±1, logistic loss
        return float(np.mean(np.logaddexp(0.0, -targets * f))), \
            float(np.mean(np.sign(f) == targets))
    top = f.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(f - top).sum(axis=1))
    return float(np.mean(log_norm - (targets * f).sum(axis=1))), \
        float(np.mean(f.argmax(axis=1) == targets.argmax(axis=1)))


def _evaluate(X, split_data, net):
    """Risk and accuracy of the unmasked network on each split (one forward pass each)."""
    return {name: _risk_and_accuracy(predict(X, inputs, **net), targets)
            for name, (inputs, targets) in split_data.items()}


def net_loss(targets):
    """The task's loss: logistic for labels ±1, softmax cross-entropy for one-hot rows."""
    return "logistic" if targets.ndim == 1 else "softmax"


def run_cell(data, s, keep_prob, repeat, seed, variants, track_curvature):
    """Run the coupled ``variants`` of one cell; returns a :class:`CellResult`.

    Parameters
    ----------
    data : ImageDataset
        The task's splits.
    s : MnistSettings
    keep_prob : float
    repeat : int
    seed : numpy.random.SeedSequence
        The repeat's seed: initialisation, noise plan and curvature draws are spawned from
        it (the same for every q).
    variants : tuple of str
    track_curvature : bool
        Whether sharpness and batch sharpness are computed every ``s.sharpness_every`` steps.
    """
    start = time.perf_counter()
    init_seq, noise_seq, curvature_seq = seed_sequence(seed).spawn(3)
    x, y = data.inputs, data.targets
    loss = net_loss(y)
    outputs = 1 if y.ndim == 1 else y.shape[1]
    net = dict(outputs=outputs)
    initial = init_particles(s.width, x.shape[1], seed=init_seq, outputs=outputs,
                             dtype=s.dtype)
    batch_size = min(s.batch_size, y.shape[0])
    plan = NoisePlan(noise_seq, width=s.width, points=y.shape[0], batch_size=batch_size,
                     keep_prob=keep_prob,
                     forward=any(MASKS[v][0] == FORWARD_MASK for v in variants))
    log_steps = np.arange(0, s.steps + 1, s.loss_every)
    if log_steps[-1] != s.steps:
        log_steps = np.append(log_steps, s.steps)
    every = s.sharpness_every if track_curvature else 0
    curvature_steps = log_steps[log_steps % every == 0] if every else np.empty(0, np.int64)
    shape = (len(variants), log_steps.size)
    risk = {split: np.full(shape, np.nan) for split in SPLITS}
    accuracy = {split: np.full(shape, np.nan) for split in SPLITS}
    curvature = {name: np.full((len(variants), curvature_steps.size), np.nan)
                 for name in CURVATURE}
    diverged = np.full(len(variants), -1)
    states = {v: initial.copy() for v in variants}
    vectors = {}
    splits = {"train": (x, y), "val": (data.val_inputs, data.val_targets),
              "test": (data.test_inputs, data.test_targets)}
    lanczos_seed, draw_seq = curvature_seq.spawn(2)
    batch = np.arange(y.shape[0])
    for li, step in enumerate(log_steps):
        seg = int(log_steps[li + 1] - step) if li + 1 < log_steps.size else 0
        noise = plan.next(seg) if seg else None
        if noise is not None and noise.batches.size:
            batch = noise.batches[0]            # the minibatch of step ``step``
        here = dict(splits, batch=(x[batch], y[batch]))
        for v, name in enumerate(variants):
            if diverged[v] >= 0:
                continue
            for split, (r, acc) in _evaluate(states[name], here, net).items():
                risk[split][v, li], accuracy[split][v, li] = r, acc
            if every and step % every == 0:
                ci = int(np.searchsorted(curvature_steps, step))
                draw_seed = np.random.SeedSequence(draw_seq.entropy,
                                                   spawn_key=(*draw_seq.spawn_key, ci))
                _curvature(curvature, v, ci, states[name], x, y, loss, s, keep_prob,
                           vectors, name, lanczos_seed, draw_seed)
        if noise is None:
            break
        for v, name in enumerate(variants):
            if diverged[v] >= 0:
                continue
            try:
                states[name] = simulate(
                    x, y, initial=states[name], master_lr=s.master_lr, steps=seg,
                    keep_prob=keep_prob, variants=(name,), loss=loss, dtype=s.dtype,
                    noise=noise, loss_every=seg, progress=False).final[name]
            except DivergenceError as exc:
                diverged[v] = step + exc.step
    return CellResult(keep_prob, repeat, tuple(variants), log_steps, risk, accuracy,
                      curvature_steps, curvature, diverged, time.perf_counter() - start)


def _curvature(out, v, ci, X, x, y, loss, s, keep_prob, vectors, name, lanczos_seed,
               batch_seed):
    """Sharpness (Lanczos, warm-started from the variant's previous eigenvector, on a fixed
    subsample of the training set) and batch sharpness with and without masks (draws shared
    by the variants of one evaluation)."""
    X = X.astype(np.float64)
    net = dict(loss=loss)
    points = None if s.sharpness_points is None else min(s.sharpness_points, y.shape[0])
    top = sharpness(X, x, y, iterations=s.lanczos_iterations, tol=s.lanczos_tol,
                    start=vectors.get(name), points=points, seed=lanczos_seed, **net)
    vectors[name] = top.vector
    out["sharpness"][v, ci] = top.value
    out["lanczos_residual"][v, ci] = top.residual
    out["lanczos_iterations"][v, ci] = top.iterations
    batch = min(s.batch_size, y.shape[0])
    for prefix, keep in (("", None), ("masked_", keep_prob)):
        est = batch_sharpness(X, x, y, batch_size=batch, draws=s.batch_sharpness_draws,
                              keep_prob=keep, seed=batch_seed, **net)
        out[f"{prefix}batch_sharpness"][v, ci] = est.mean
        out[f"{prefix}batch_sharpness_se"][v, ci] = est.stderr
