"""MNIST IDX and CIFAR-10 binary files, and the damage each is refused for, named by
file and byte offset."""

import gzip
import pickle

import numpy as np
import pytest

from dl_cli.data import DataError, load
from dl_cli.data.image_files import CIFAR_RECORD, MNIST_FILES
from dl_cli.schema import DataConfig, SplitConfig


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder, gz, train=6, test=4, size=28):
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, size=(train, size, size)),
        "train_labels": np.arange(train) % 10,
        "test_images": rng.integers(0, 256, size=(test, size, size)),
        "test_labels": np.arange(test) % 10,
    }
    for key, array in arrays.items():
        name = MNIST_FILES[key]
        if gz:
            with gzip.open(folder / f"{name}.gz", "wb") as file:
                file.write(idx_bytes(array))
        else:
            (folder / name).write_bytes(idx_bytes(array))
    return arrays


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_mnist_reads_idx_files(tmp_path, gz, raw):
    arrays = write_mnist(tmp_path, gz)
    data = raw({"type": "mnist", "path": str(tmp_path)})
    assert data.X.shape == (6, 1, 28, 28) and data.X_test.shape == (4, 1, 28, 28)
    np.testing.assert_allclose(data.X[:, 0], arrays["train_images"] / 255, rtol=1e-6)
    np.testing.assert_array_equal(data.y_test, arrays["test_labels"])
    assert data.classes == 10 and data.X.min() >= 0 and data.X.max() <= 1
    flat = raw({"type": "mnist", "path": str(tmp_path), "flatten": True})
    assert flat.X.shape == (6, 784)


def test_mnist_through_load_keeps_its_test_set(tmp_path):
    write_mnist(tmp_path, gz=True, train=20, test=5)
    splits = load(DataConfig(dataset={"type": "mnist", "path": str(tmp_path)}), seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 4, 5)
    assert splits.in_shape == (1, 28, 28)


def test_classes_only_the_own_test_set_has_are_a_warning_no_split_fixes(tmp_path):
    write_mnist(tmp_path, gz=False, train=8, test=10)  # training labels 0..7, test 0..9
    splits = load(DataConfig(dataset={"type": "mnist", "path": str(tmp_path)},
                             split=SplitConfig(val=0.0)), seed=0)
    assert splits.warnings == ["data: 2 of the 10 classes have no sample in the training split: "
                               "8, 9; validation and test hold 2 samples of them, which the model "
                               "always misclassifies, as it never learns to predict a class it has "
                               "not seen. Only the data set's own test set has samples of class "
                               "8, 9, which no split setting changes"]
    both = load(DataConfig(dataset={"type": "mnist", "path": str(tmp_path)},
                           split=SplitConfig(val=0.25)), seed=0)  # 2 of 8 singletons to val
    assert both.warnings[0].endswith("no split setting changes. The stratified split (data.split: "
                                     "val 0.25, the data set's own test set) left the others, too "
                                     "small to be in every split, out of training; to train on "
                                     "every class, lower data.split.val, or add samples of them")


def corrupt(folder, key, data: bytes):
    (folder / MNIST_FILES[key]).write_bytes(data)


def test_mnist_wrong_magic_names_file_and_offset(tmp_path, raw):
    write_mnist(tmp_path, gz=False)
    corrupt(tmp_path, "train_images", b"\x01\x02\x08\x03" + bytes(100))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: byte offset 0: magic number"):
        raw({"type": "mnist", "path": str(tmp_path)})


def test_mnist_wrong_dimension_count_names_offset_3(tmp_path, raw):
    write_mnist(tmp_path, gz=False)
    corrupt(tmp_path, "test_labels", idx_bytes(np.zeros((4, 2))))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: byte offset 3: 2 dimensions"):
        raw({"type": "mnist", "path": str(tmp_path)})


def test_mnist_size_not_matching_header_names_the_data_offset(tmp_path, raw):
    write_mnist(tmp_path, gz=False)
    good = idx_bytes(np.zeros((6, 28, 28)))
    corrupt(tmp_path, "train_images", good[:-10])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: .*byte offset 16, but the file has 4694"):
        raw({"type": "mnist", "path": str(tmp_path)})


def test_mnist_label_out_of_range_names_its_byte_offset(tmp_path, raw):
    write_mnist(tmp_path, gz=True)
    with gzip.open(tmp_path / f"{MNIST_FILES['train_labels']}.gz", "wb") as file:
        file.write(idx_bytes(np.array([1, 2, 3, 12, 0, 0])))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: byte offset 11: label 12"):
        raw({"type": "mnist", "path": str(tmp_path)})


def test_mnist_counts_must_agree_and_files_must_exist(tmp_path, raw):
    write_mnist(tmp_path, gz=False)
    corrupt(tmp_path, "test_labels", idx_bytes(np.zeros(3)))
    with pytest.raises(DataError, match=r"4 images, but .*t10k-labels-idx1-ubyte has 3 labels"):
        raw({"type": "mnist", "path": str(tmp_path)})
    (tmp_path / MNIST_FILES["test_labels"]).unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        raw({"type": "mnist", "path": str(tmp_path)})


def cifar_records(labels, rng):
    images = rng.integers(0, 256, size=(len(labels), 3 * 32 * 32), dtype=np.uint8)
    return np.c_[np.asarray(labels, dtype=np.uint8), images].tobytes()


def write_cifar(folder, per_batch=2, test=3):
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        (folder / f"data_batch_{i}.bin").write_bytes(cifar_records(np.arange(per_batch) + i, rng))
    (folder / "test_batch.bin").write_bytes(cifar_records(np.arange(test), rng))
    (folder / "batches.meta.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n\n")


def test_cifar10_reads_binary_batches(tmp_path, raw):
    write_cifar(tmp_path)
    data = raw({"type": "cifar10", "path": str(tmp_path)})
    assert data.X.shape == (10, 3, 32, 32) and data.X_test.shape == (3, 3, 32, 32)
    np.testing.assert_array_equal(data.y, [1, 2, 2, 3, 3, 4, 4, 5, 5, 6])
    first = np.frombuffer((tmp_path / "data_batch_1.bin").read_bytes()[:CIFAR_RECORD], np.uint8)
    np.testing.assert_allclose(data.X[0, 0] * 255, first[1:1025].reshape(32, 32), atol=1e-4)  # red plane
    np.testing.assert_allclose(data.X[0, 2] * 255, first[2049:].reshape(32, 32), atol=1e-4)  # blue
    assert data.names == [f"class{i}" for i in range(10)]


def test_cifar10_class_names_that_are_not_text_are_named(tmp_path, raw):
    write_cifar(tmp_path)
    (tmp_path / "batches.meta.txt").write_bytes("caf\xe9\n".encode("latin-1") * 10)
    with pytest.raises(DataError, match=r"batches\.meta\.txt: not UTF-8 text"):
        raw({"type": "cifar10", "path": str(tmp_path)})


@pytest.mark.parametrize("flatten", [False, True])
def test_an_idx_file_without_images_is_refused(tmp_path, flatten):
    write_mnist(tmp_path, gz=False, train=0)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: holds no images"):
        load(DataConfig(dataset={"type": "mnist", "path": str(tmp_path), "flatten": flatten}))


def test_cifar10_length_not_a_multiple_of_the_record(tmp_path, raw):
    write_cifar(tmp_path)
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(path.read_bytes() + b"\x00" * 5)
    with pytest.raises(DataError, match=r"data_batch_3\.bin: length 6151 .*3073-byte record.*offset 6146"):
        raw({"type": "cifar10", "path": str(tmp_path)})


def test_cifar10_label_out_of_range_names_the_record_offset(tmp_path, raw):
    write_cifar(tmp_path)
    (tmp_path / "test_batch.bin").write_bytes(cifar_records([3, 10, 1], np.random.default_rng(1)))
    with pytest.raises(DataError, match=r"test_batch\.bin: byte offset 3073: label 10"):
        raw({"type": "cifar10", "path": str(tmp_path)})


def test_cifar10_python_version_is_refused_not_unpickled(tmp_path, raw):
    write_cifar(tmp_path)
    payload = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, protocol=2)
    (tmp_path / "data_batch_2.bin").write_bytes(payload)
    with pytest.raises(DataError, match=r"data_batch_2\.bin: a Python pickle.*binary version"):
        raw({"type": "cifar10", "path": str(tmp_path)})
    python_version = tmp_path / "python"
    python_version.mkdir()
    (python_version / "data_batch_1").write_bytes(payload)
    with pytest.raises(DataError, match=r"data_batch_1: a pickled batch.*binary version"):
        raw({"type": "cifar10", "path": str(python_version)})
