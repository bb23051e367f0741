"""Small image data sets: scikit-learn's 8x8 digits and local MNIST files (IDX or .npz).

Images are returned as float arrays scaled to [0, 1] with shape (n, height, width); labels as
int arrays. :func:`flatten` turns images into (n, pixels) inputs, optionally with a bias
column; :func:`one_hot`, :func:`signed_one_hot` and :func:`two_class` build targets.
"""
import gzip
import math
import zlib

import numpy as np

from ..validation import check_array, check_choice, check_data_file, check_int, seed_sequence
from ..runtime.memory import check_memory
from ..runtime.results import read_npz

# IDX element types (magic byte 3) -> numpy big-endian dtypes
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_digits():
    """scikit-learn's bundled 8x8 handwritten digits (1797 images), pixels scaled to [0, 1].

    Needs the optional ``data`` extra (scikit-learn).

    Returns
    -------
    images : ndarray, shape (1797, 8, 8)
    labels : ndarray of int, shape (1797,)
    """
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as exc:
        raise ImportError("the digits data needs scikit-learn: "
                          "pip install 'meanfield-dropout[data]'") from exc
    bunch = _sk_load_digits()
    return bunch.images.astype(np.float64) / 16.0, bunch.target.astype(np.int64)


def _open(path):
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_idx(path, what="IDX file"):
    """Read an IDX file (the MNIST format), gzipped or not, into a numpy array.

    Raises a one-line ``ValueError`` naming the file if it is missing, unreadable, not an IDX
    file, truncated or corrupt (``what`` names the file's role in the message).
    """
    path = str(check_data_file(path, what))
    try:
        with _open(path) as fh:
            header = fh.read(4)
            if len(header) != 4 or header[0] != 0 or header[1] != 0 \
                    or header[2] not in _IDX_TYPES:
                raise ValueError(f"{what} {path} is not an IDX file (bad magic number "
                                 f"{header!r})")
            ndim = header[3]
            dims = fh.read(4 * ndim)
            if len(dims) != 4 * ndim:
                raise ValueError(f"{what} {path} is truncated: its header ends before the "
                                 f"{ndim} dimension sizes")
            shape = tuple(int.from_bytes(dims[4 * i:4 * i + 4], "big") for i in range(ndim))
            dtype = np.dtype(_IDX_TYPES[header[2]])
            expected = math.prod(shape) * dtype.itemsize
            # the loaders keep float64 copies: checked before anything is decompressed
            check_memory(8 * math.prod(shape) + expected, f"{what} {path} (shape {shape})",
                         "give a smaller file")
            raw = fh.read(expected + 1)     # a gzip bomb stops here
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{what} {path} is unreadable, corrupt or truncated: {exc}") from None
    if len(raw) != expected:
        raise ValueError(f"{what} {path}: header says shape {shape} ({expected} bytes of data) "
                         f"but holds {'more' if len(raw) > expected else len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Write an unsigned-byte array as an (uncompressed) IDX file."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"array must have dtype uint8, got {array.dtype}")
    with open(path, "wb") as fh:
        fh.write(bytes([0, 0, 0x08, array.ndim]))
        for size in array.shape:
            fh.write(int(size).to_bytes(4, "big"))
        fh.write(array.tobytes())


def _npz_pair(path, split):
    candidates = [(f"x_{split}", f"y_{split}"), (f"X_{split}", f"y_{split}"),
                  (f"{split}_images", f"{split}_labels"), ("images", "labels"), ("x", "y")]
    found = []

    def select(names):
        found.extend(names)
        for pair in candidates:
            if set(pair) <= set(names):
                return list(pair)
        return []

    arrays = read_npz(path, "MNIST archive", select)
    if not arrays:
        raise ValueError(f"MNIST archive {path}: no image/label arrays for split {split!r} "
                         f"among keys {sorted(found)} (expected e.g. x_{split}/y_{split})")
    images, labels = arrays.values()
    return images, labels


def load_mnist(images_path, labels_path=None, split="train", pool=4):
    """Load local MNIST-style images, scale to [0, 1] and average-pool them.

    Parameters
    ----------
    images_path : str or path
        An IDX image file (e.g. ``train-images-idx3-ubyte[.gz]``), or an ``.npz`` archive with
        ``x_train``/``y_train``-style keys (then ``labels_path`` is not needed).
    labels_path : str or path, optional
        The matching IDX label file.
    split : {"train", "test"}
        Which arrays of an ``.npz`` archive to read.
    pool : int
        Average-pooling factor; 4 turns 28x28 into 7x7 as in the SME paper. 1 keeps the size.

    Returns
    -------
    images : ndarray, shape (n, 28 // pool, 28 // pool)
    labels : ndarray of int, shape (n,)

    Raises
    ------
    ValueError
        One line naming the file: missing, not an IDX file or ``.npz`` archive, truncated,
        corrupt, without the arrays of ``split``, or holding arrays of the wrong shapes.

    Notes
    -----
    Integer pixels (0..255) are divided by 255; float pixels are divided by 255 only if
    some exceed 1 (otherwise they are taken as already scaled to [0, 1]).
    """
    check_choice(split, "split", ("train", "test"))
    if str(images_path).endswith(".npz"):
        images, labels = _npz_pair(images_path, split)
        where = f"MNIST archive {images_path}"
    else:
        if labels_path is None:
            raise ValueError("labels_path is required with an IDX image file")
        images = read_idx(images_path, "MNIST image file")
        labels = read_idx(labels_path, "MNIST label file")
        where = f"MNIST files {images_path} and {labels_path}"
    if not (np.issubdtype(images.dtype, np.number) and np.issubdtype(labels.dtype, np.number)) \
            or np.iscomplexobj(images):
        raise ValueError(f"{where}: images and labels must be real numbers, got "
                         f"{images.dtype} and {labels.dtype}")
    integer_pixels = np.issubdtype(images.dtype, np.integer)
    images = np.asarray(images, dtype=np.float64)
    if labels.size and not np.all(labels == np.round(labels)):
        raise ValueError(f"{where}: labels must be integers")
    labels = np.asarray(labels).astype(np.int64).ravel()
    if images.ndim != 3 or images.shape[0] != labels.shape[0] or images.shape[0] == 0:
        raise ValueError(f"{where}: expected images (n, h, w) with n >= 1 and n labels, got "
                         f"shapes {images.shape} and {labels.shape}")
    if not np.all(np.isfinite(images)) or images.min() < 0:
        raise ValueError(f"{where}: pixels must be finite and >= 0")
    if integer_pixels or images.max() > 1.0:
        images = images / 255.0
    return average_pool(images, pool), labels


def average_pool(images, factor):
    """Average non-overlapping factor x factor patches: (n, h, w) -> (n, h/factor, w/factor)."""
    images = check_array(images, "images", 3)
    factor = check_int(factor, "factor", low=1)
    n, h, w = images.shape
    if h % factor or w % factor:
        raise ValueError(f"image size {h}x{w} must be divisible by factor={factor}")
    return images.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


def flatten(images, bias=True):
    """Images (n, h, w) -> inputs (n, h*w), with a trailing column of ones if ``bias``."""
    images = check_array(images, "images", 3)
    flat = images.reshape(images.shape[0], -1)
    if bias:
        flat = np.concatenate([flat, np.ones((flat.shape[0], 1))], axis=1)
    return flat


def one_hot(labels, n_classes=None):
    """One-hot targets (n, n_classes) with entries 0 and 1."""
    labels = check_array(labels, "labels", 1, dtype=np.int64)
    if n_classes is None:
        n_classes = int(labels.max()) + 1
    n_classes = check_int(n_classes, "n_classes", low=1)
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes - 1}]")
    out = np.zeros((labels.size, n_classes))
    out[np.arange(labels.size), labels] = 1.0
    return out


def signed_one_hot(labels, n_classes=None):
    """+-1 coding: +1 for the true class, -1 for the others, shape (n, n_classes)."""
    return 2.0 * one_hot(labels, n_classes) - 1.0


def two_class(images, labels, pos=4, neg=7):
    """Keep the images of two classes; targets +1 for ``pos`` and -1 for ``neg``.

    Returns
    -------
    images : ndarray
        The selected images (same trailing shape).
    targets : ndarray, shape (n_selected,)
    """
    labels = check_array(labels, "labels", 1, dtype=np.int64)
    images = np.asarray(images)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"images and labels must have the same length, got "
                         f"{images.shape[0]} and {labels.shape[0]}")
    if pos == neg:
        raise ValueError(f"pos and neg must differ, got {pos}")
    keep = (labels == pos) | (labels == neg)
    if not keep.any():
        raise ValueError(f"no samples with label {pos} or {neg}")
    return images[keep], np.where(labels[keep] == pos, 1.0, -1.0)


def digits_problem_data(n_train=None, n_test=None, seed=0, targets="one_hot", pool=1):
    """Digits as flattened (optionally pooled) inputs with bias and targets, train/test split.

    Parameters
    ----------
    n_train, n_test : int, optional
        Sizes of the random train/test split (default: 1297 / 500).
    seed : int
        Seed of the shuffle.
    targets : {"one_hot", "signed"}
        0/1 one-hot or +-1 coding of the 10 classes.
    pool : {1, 2, 4}
        Average-pooling factor (2 gives 4x4 images, d = 17 with the bias).

    Returns
    -------
    x_train, y_train, x_test, y_test, labels_test : ndarray
    """
    check_choice(targets, "targets", ("one_hot", "signed"))
    images, labels = load_digits()
    n_total = labels.size
    n_test = 500 if n_test is None else check_int(n_test, "n_test", low=1, high=n_total - 1)
    n_train = (n_total - n_test if n_train is None
               else check_int(n_train, "n_train", low=1, high=n_total - n_test))
    order = np.random.default_rng(seed_sequence(seed)).permutation(n_total)
    train, test = order[:n_train], order[n_train:n_train + n_test]
    coder = one_hot if targets == "one_hot" else signed_one_hot
    inputs = flatten(average_pool(images, pool))
    return (inputs[train], coder(labels[train], 10), inputs[test], coder(labels[test], 10),
            labels[test])


__all__ = ["load_digits", "read_idx", "write_idx", "load_mnist", "average_pool", "flatten",
           "one_hot", "signed_one_hot", "two_class", "digits_problem_data"]
