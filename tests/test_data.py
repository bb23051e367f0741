"""Image loaders: bundled digits, IDX (plain and gzipped) and .npz MNIST-style files."""
import gzip

import numpy as np
import pytest

from meanfield_dropout.data.images import (average_pool, digits_problem_data, flatten,
                                           load_digits, load_mnist, one_hot, read_idx,
                                           signed_one_hot, two_class, write_idx)


def test_digits():
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,)
    assert images.min() == 0.0 and images.max() == 1.0
    x_tr, y_tr, x_te, y_te, lab_te = digits_problem_data(100, 50, pool=2)
    assert x_tr.shape == (100, 17) and np.all(x_tr[:, -1] == 1.0)
    assert y_tr.shape == (100, 10) and np.all(y_tr.sum(axis=1) == 1.0)
    assert np.array_equal(y_te.argmax(axis=1), lab_te)


def _fake_mnist(n=6):
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, size=n, dtype=np.uint8))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_and_pooling(tmp_path, gz):
    images, labels = _fake_mnist()
    paths = [tmp_path / "img.idx", tmp_path / "lab.idx"]
    write_idx(paths[0], images)
    write_idx(paths[1], labels)
    if gz:
        for i, path in enumerate(paths):
            gz_path = path.with_suffix(".gz")
            gz_path.write_bytes(gzip.compress(path.read_bytes()))
            paths[i] = gz_path
    assert np.array_equal(read_idx(paths[0]), images)
    pooled, lab = load_mnist(paths[0], paths[1])
    assert pooled.shape == (6, 7, 7) and np.array_equal(lab, labels)
    expected = images[:, :4, :4].mean(axis=(1, 2)) / 255.0
    assert np.allclose(pooled[:, 0, 0], expected)


def test_npz_and_errors(tmp_path):
    images, labels = _fake_mnist()
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels)
    pooled, lab = load_mnist(tmp_path / "mnist.npz")
    assert pooled.shape == (6, 7, 7) and pooled.max() <= 1.0
    # faint uint8 images (all pixels <= 1) are still bytes, scaled by 255
    np.savez(tmp_path / "faint.npz", x_train=images // 255, y_train=labels)
    faint, _ = load_mnist(tmp_path / "faint.npz", pool=1)
    assert np.array_equal(faint, (images // 255) / 255.0)
    with pytest.raises(ValueError, match="split"):
        load_mnist(tmp_path / "mnist.npz", split="test")
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad.idx")
    with pytest.raises(ValueError, match="divisible"):
        average_pool(np.zeros((1, 5, 5)), 2)


def test_label_helpers():
    labels = np.array([4, 7, 1, 4])
    assert np.array_equal(one_hot(labels, 8)[0], np.eye(8)[4])
    assert set(np.unique(signed_one_hot(labels, 8))) == {-1.0, 1.0}
    imgs = np.arange(4)[:, None, None] * np.ones((4, 2, 2))
    sel, y = two_class(imgs, labels, pos=4, neg=7)
    assert np.array_equal(y, [1.0, -1.0, 1.0]) and sel.shape == (3, 2, 2)
    assert flatten(sel, bias=False).shape == (3, 4)
    with pytest.raises(ValueError, match="no samples"):
        two_class(imgs, labels, pos=2, neg=3)


def _bad_mnist_files(tmp_path):
    """{name: (images path, labels path or None)} of broken MNIST inputs."""
    images, labels = _fake_mnist()
    write_idx(tmp_path / "img.idx", images)
    write_idx(tmp_path / "lab.idx", labels)
    good = (tmp_path / "img.idx").read_bytes()
    (tmp_path / "cut.idx").write_bytes(good[:len(good) // 2])
    (tmp_path / "header.idx").write_bytes(good[:6])
    (tmp_path / "bad.gz").write_bytes(gzip.compress(good)[:40])
    write_idx(tmp_path / "few.idx", labels[:3])
    np.savez(tmp_path / "good.npz", x_train=images, y_train=labels)
    archive = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(archive[:len(archive) // 2])
    (tmp_path / "random.npz").write_bytes(np.random.default_rng(1).bytes(4000))
    np.savez(tmp_path / "complex.npz", x_train=images + 1j, y_train=labels)
    return {"missing": (tmp_path / "none.idx", tmp_path / "lab.idx"),
            "missing labels": (tmp_path / "img.idx", tmp_path / "none.idx"),
            "directory": (tmp_path, tmp_path / "lab.idx"),
            "truncated data": (tmp_path / "cut.idx", tmp_path / "lab.idx"),
            "truncated header": (tmp_path / "header.idx", tmp_path / "lab.idx"),
            "truncated gzip": (tmp_path / "bad.gz", tmp_path / "lab.idx"),
            "label count": (tmp_path / "img.idx", tmp_path / "few.idx"),
            "missing npz": (tmp_path / "none.npz", None),
            "truncated npz": (tmp_path / "cut.npz", None),
            "random npz": (tmp_path / "random.npz", None),
            "complex npz": (tmp_path / "complex.npz", None)}


@pytest.mark.parametrize("case, message", [
    ("missing", "none.idx: no such MNIST image file"),
    ("missing labels", "none.idx: no such MNIST label file"),
    ("directory", "is not a regular file"), ("truncated data", "header says shape"),
    ("truncated header", "truncated"), ("truncated gzip", "corrupt or truncated"),
    ("label count", "expected images"), ("missing npz", "no such MNIST archive"),
    ("truncated npz", "or truncated"), ("random npz", "not an .npz"),
    ("complex npz", "real numbers"),
])
def test_bad_mnist_files_give_one_line_naming_the_file(tmp_path, case, message):
    images, labels = _bad_mnist_files(tmp_path)[case]
    with pytest.raises(ValueError, match=message) as info:
        load_mnist(images, labels)
    text = str(info.value)
    assert "\n" not in text and (images.name in text or str(images) in text
                                  or (labels is not None and labels.name in text))
