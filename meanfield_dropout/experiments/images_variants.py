"""Dropout and its variants on two digit classes: the MNIST experiment of Chizat, Marion &
Yesbay (2025).

Digits 4 (+1) vs 7 (−1), logistic loss, SGD with batches of 64, width 4000, master learning
rate τ = 0.25, keep q ∈ {0.6, 0.7, 0.8, 0.9}; all variants share the initialisation, the
batches and the masks (one :func:`~meanfield_dropout.engine.simulate` call per (q, repeat); a
repeat has the same seed, hence the same initialisation and batches, for every q). GD does
not depend on q, so it runs once per repeat (with the first q) and is drawn as a flat line.

Default length: 4000 steps instead of the paper's 40 000, with its 10 repeats. On the
bundled digits there are only 252 training images of the two classes, so 4000 steps of batch
64 are already about 1000 epochs (the paper's 40 000 steps on about 12 000 MNIST images are
about 200 epochs); by then the test risk only creeps down (about 0.011 at step 1000, 0.007
at step 4000, for every variant). The best risk is then close to the final one.
"""
import dataclasses

import numpy as np

from ..runtime import results
from ..validation import check_int, seed_sequence
from ..data.images import flatten, load_digits, load_mnist, two_class
from ..engine_plan import recorded_steps, simulation_cost
from ..runtime.runner import map_tasks
from ..stats import mean_interval
from .settings import IMAGE_VARIANTS as VARIANTS, ImageNetworkSettings, real_tuple
from .teacher_student import simulate_surviving


@results.register
@dataclasses.dataclass(frozen=True)
class ImagesVariantsSettings(ImageNetworkSettings):
    """Settings of the digits experiment (defaults: the paper's, with 4000 steps).

    ``mnist`` is a local MNIST ``.npz`` archive used instead of scikit-learn's digits (see
    :func:`image_data`); ``seed`` seeds the repeats and the digits split.
    """

    steps: int = 4000
    repeats: int = 10
    loss_every: int = 100
    test_fraction: float = 0.3
    mnist: str | None = None
    seed: int = 0

    QUICK = dict(keep_probs=(0.6, 0.9), width=1000, steps=600, repeats=1, loss_every=50)

    def __post_init__(self):
        self._set(keep_probs=real_tuple(self.keep_probs, "keep_probs"),
                  seed=check_int(self.seed, "seed", low=0),
                  repeats=check_int(self.repeats, "repeats", low=1),
                  mnist=None if self.mnist is None else str(self.mnist))


@results.result_class
class ImagesVariantsResult:
    """Train and test risks of the digits experiment.

    Attributes
    ----------
    settings : ImagesVariantsSettings
    data : str
        Description of the data, for titles.
    train_points, test_points : int
    batch_size : int
        The SGD batch (capped at the training set).
    keep_probs : ndarray, shape (Q,)
    loss_steps : ndarray, shape (L,)
    train_risk, test_risk : ndarray, shape (Q, R, V, L)
        NaN where a variant diverged.
    variants : ndarray of str
    """

    settings: ImagesVariantsSettings
    data: str
    train_points: int
    test_points: int
    batch_size: int
    keep_probs: np.ndarray
    loss_steps: np.ndarray
    train_risk: np.ndarray
    test_risk: np.ndarray
    variants: np.ndarray

    def best_risk(self):
        """{variant: (mean, half-width of the 95% interval) over repeats, shape (Q,)} of the
        best test risk over training."""
        best = np.nanmin(self.test_risk, axis=3)         # (q, repeat, variant); NaN: diverged
        return {str(name): mean_interval(best[:, :, v]) for v, name in enumerate(self.variants)}


def image_data(mnist=None, *, test_fraction=0.3, seed=0):
    """Digits 4 (+1) and 7 (−1) as flattened inputs, split into train and test sets.

    Parameters
    ----------
    mnist : str or path, optional
        A local MNIST ``.npz`` archive with ``x_train``/``y_train`` and ``x_test``/``y_test``
        (28×28 images, d = 784, its own train/test split). Without it, scikit-learn's bundled
        8×8 digits (d = 64), split at random.
    test_fraction : float
        Share of the digits images used as test set (ignored for MNIST).
    seed : int
        Seed of the digits split.

    Returns
    -------
    inputs, targets, test_inputs, test_targets : ndarray
    name : str
        Description of the data for figure titles.
    """
    if mnist is not None:
        train_images, train_labels = load_mnist(mnist, split="train", pool=1)
        test_images, test_labels = load_mnist(mnist, split="test", pool=1)
        x, y = two_class(train_images, train_labels, pos=4, neg=7)
        x_test, y_test = two_class(test_images, test_labels, pos=4, neg=7)
        return flatten(x, bias=False), y, flatten(x_test, bias=False), y_test, "MNIST 4 vs 7"
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    images, labels = two_class(*load_digits(), pos=4, neg=7)
    inputs = flatten(images, bias=False)
    order = np.random.default_rng(seed_sequence(seed)).permutation(labels.size)
    n_test = max(1, round(test_fraction * labels.size))
    test, train = order[:n_test], order[n_test:]
    return (inputs[train], labels[train], inputs[test], labels[test],
            "sklearn 8×8 digits 4 vs 7")


def run(settings, *, progress=True, workers=None):
    """Run every (q, repeat) on ``workers`` processes (default: one per available core),
    with the estimate of :func:`task_seconds` and a bar when ``progress``
    (:func:`~meanfield_dropout.runtime.runner.map_tasks`); the numbers do not depend on the
    worker count.

    Returns
    -------
    ImagesVariantsResult
    """
    s = settings
    x, y, x_test, y_test, name = image_data(s.mnist, test_fraction=s.test_fraction,
                                            seed=s.seed)
    batch_size = min(s.batch_size, y.size)
    keep_probs, repeats = s.keep_probs, s.repeats
    seeds = seed_sequence(s.seed).spawn(repeats)
    cells = [(k, r) for r in range(repeats) for k in range(len(keep_probs))]
    # GD does not depend on q: it runs with the first q only
    tasks = [(x, y, x_test, y_test, s, batch_size, keep_probs[k], seeds[r],
              VARIANTS if k == 0 else tuple(v for v in VARIANTS if v != "gd"))
             for k, r in cells]
    out = dict(zip(cells, map_tasks(_cell, tasks, workers, what="images_variants",
                                    estimate=lambda: task_seconds(s), progress=progress,
                                    unit="run")))
    loss_steps, _, _ = out[0, 0]
    shape = (len(keep_probs), repeats, len(VARIANTS), loss_steps.size)
    train, test = np.full(shape, np.nan), np.full(shape, np.nan)
    for k, r in sorted(out):            # q index 0 first: it holds GD
        _, train_risk, test_risk = out[k, r]
        for v, variant in enumerate(VARIANTS):
            if variant in train_risk:
                train[k, r, v], test[k, r, v] = train_risk[variant], test_risk[variant]
            elif variant == "gd":  # identical for every q, copied from the first
                train[k, r, v], test[k, r, v] = train[0, r, v], test[0, r, v]
    return ImagesVariantsResult(
        settings=s, data=name, train_points=int(y.size), test_points=int(y_test.size),
        batch_size=batch_size, keep_probs=np.array(keep_probs), loss_steps=loss_steps,
        train_risk=train, test_risk=test, variants=np.array(VARIANTS))


def task_seconds(settings):
    """Estimated seconds of one core of each (q, repeat) run of :func:`run`:
    :func:`~meanfield_dropout.engine_plan.simulation_cost` of its variants (GD at the first q
    only), SGD batches, risks on the training and test images.

    Returns
    -------
    list of float
    """
    s = settings
    x, y, x_test, _, _ = image_data(s.mnist, test_fraction=s.test_fraction, seed=s.seed)
    records = recorded_steps(s.steps, s.loss_every).size
    return [simulation_cost(len(VARIANTS) - (k > 0), s.width, s.steps, min(s.batch_size, y.size),
                            x.shape[1], 1, records, y.size + x_test.shape[0])
            for _ in range(s.repeats) for k in range(len(s.keep_probs))]


def _cell(x, y, x_test, y_test, s, batch_size, keep_prob, seed, names):
    """One coupled SGD run of ``names`` at keep probability ``keep_prob`` (a worker task).

    Returns the loss steps and, per variant that did not diverge, its train and test risk.
    """
    run_, lost = simulate_surviving(
        x, y, names, width=s.width, keep_prob=keep_prob, master_lr=s.master_lr,
        steps=s.steps, seed=seed, loss="logistic", batch_size=batch_size,
        val_inputs=x_test, val_targets=y_test, loss_every=s.loss_every, progress=False)
    kept = [name for name in names if name not in lost]
    return (run_.loss_steps, {name: run_.train_loss[name] for name in kept},
            {name: run_.val_loss[name] for name in kept})


def summary(result):
    """The best test risk per variant and q, with its 95% interval."""
    return [f"best test risk {name:>8}: " + ", ".join(
        f"q={q:g}: {m:.5f} ± {h:.5f}" for q, m, h in zip(result.keep_probs, mean, half))
        for name, (mean, half) in result.best_risk().items()]
