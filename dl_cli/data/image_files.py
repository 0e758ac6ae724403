"""Image datasets in their original binary formats: MNIST (and Fashion-MNIST) IDX files,
and the binary version of CIFAR-10.

Pixels are bytes, so X is float32 in ``[0, 1]`` (exact, and half the memory of float64).
Both come with their own test set. Malformed files raise ``DataError`` naming the file
and the byte offset where the problem is. A pickled CIFAR batch (the "python version")
is refused: nothing a user loads is ever unpickled.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from ..registry import DATASETS
from ..checks import check_bool
from .base import DataError, Dataset, RawData
from .files import check_path, existing

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_UBYTE = 0x08  # the IDX type code of unsigned bytes, the only type MNIST uses


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzipped (``.gz``)."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path) as file:
            return file.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: not a readable gzip file ({err})") from None


def find_file(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/name.gz`` when only the gzipped file is there."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder}: missing {name} (or {name}.gz)")


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX array of unsigned bytes with ``ndim`` dimensions.

    Layout: bytes 0-1 zero, byte 2 the type code (0x08), byte 3 the number of
    dimensions, then each dimension as a big-endian uint32, then the data, row-major.
    Offsets in gzipped files count bytes of the decompressed data.
    """
    data = read_bytes(path)
    expected_magic = bytes([0, 0, IDX_UBYTE, ndim])
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise DataError(f"{path}: byte offset 0: magic number {data[:4].hex()} is not IDX "
                        f"(expected {expected_magic.hex()})")
    if data[2] != IDX_UBYTE:
        raise DataError(f"{path}: byte offset 2: type code 0x{data[2]:02x}; only 0x08 "
                        f"(unsigned byte) is supported")
    if data[3] != ndim:
        raise DataError(f"{path}: byte offset 3: {data[3]} dimensions, expected {ndim}")
    start = 4 + 4 * ndim
    if len(data) < start:
        raise DataError(f"{path}: the file ends at byte offset {len(data)}, inside the "
                        f"{start}-byte header")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    size = math.prod(shape)
    if len(data) - start != size:
        raise DataError(f"{path}: the header declares shape {shape}, {size} bytes of data from "
                        f"byte offset {start}, but the file has {len(data) - start}")
    return np.frombuffer(data, dtype=np.uint8, offset=start).reshape(shape)


def check_labels(path: Path, labels: np.ndarray, start: int, stride: int, classes: int) -> None:
    """Refuse a label >= classes; label i sits at byte offset ``start + i·stride``."""
    bad = np.flatnonzero(labels >= classes)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{path}: byte offset {start + i * stride}: label {labels[i]} is out "
                        f"of range 0..{classes - 1}")


def pixels(images: np.ndarray) -> np.ndarray:
    """Bytes to float32 in [0, 1]."""
    return images.astype(np.float32) / np.float32(255)


@DATASETS.register("mnist")
class Mnist(Dataset):
    """MNIST or Fashion-MNIST from the folder holding the four IDX files (plain or
    ``.gz``): train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
    t10k-labels-idx1-ubyte. 60,000 training and 10,000 test images, ten classes.

    X ``(N, 1, 28, 28)``, or ``(N, 784)`` with ``flatten: true``; pixels in [0, 1].
    """

    classes = 10

    def __init__(self, path: str, flatten: bool = False):
        self.path = check_path(path)
        self.flatten = check_bool("flatten", flatten)

    def read_pair(self, folder: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
        image_path = find_file(folder, MNIST_FILES[f"{part}_images"])
        label_path = find_file(folder, MNIST_FILES[f"{part}_labels"])
        images, labels = read_idx(image_path, 3), read_idx(label_path, 1)
        if len(images) != len(labels):
            raise DataError(f"{image_path}: {len(images)} images, but {label_path} has "
                            f"{len(labels)} labels")
        check_labels(label_path, labels, start=8, stride=1, classes=self.classes)
        if len(images) == 0:
            raise DataError(f"{image_path}: holds no images")
        images = pixels(images)
        shape = (len(images), -1) if self.flatten else (len(images), 1, *images.shape[1:])
        return images.reshape(shape), labels.astype(np.int64)

    def load(self, rng):
        folder = existing(Path(self.path))
        X, y = self.read_pair(folder, "train")
        X_test, y_test = self.read_pair(folder, "test")
        if X_test.shape[1:] != X.shape[1:]:
            raise DataError(f"{folder}: test images {X_test.shape[1:]} differ from training "
                            f"images {X.shape[1:]}")
        return RawData(X, y, classes=self.classes, X_test=X_test, y_test=y_test)


CIFAR_SHAPE = (3, 32, 32)
CIFAR_RECORD = 1 + math.prod(CIFAR_SHAPE)  # a label byte, then the R, G, B planes row-major
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch.bin"
CIFAR_PICKLE_HELP = ("dl never unpickles files; download the binary version "
                     "(cifar-10-binary.tar.gz, folder cifar-10-batches-bin with data_batch_1.bin "
                     "... data_batch_5.bin and test_batch.bin)")


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 binary batch: images ``(N, 3, 32, 32)`` uint8, labels ``(N,)``."""
    data = path.read_bytes()
    if data[:1] == b"\x80":
        raise DataError(f"{path}: a Python pickle (the CIFAR-10 'python version'); "
                        f"{CIFAR_PICKLE_HELP}")
    if len(data) == 0 or len(data) % CIFAR_RECORD:
        complete = len(data) - len(data) % CIFAR_RECORD
        raise DataError(f"{path}: length {len(data)} is not a positive multiple of the "
                        f"{CIFAR_RECORD}-byte record; the last complete record ends at byte "
                        f"offset {complete}")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    check_labels(path, records[:, 0], start=0, stride=CIFAR_RECORD, classes=10)
    return records[:, 1:].reshape(-1, *CIFAR_SHAPE), records[:, 0].astype(np.int64)


@DATASETS.register("cifar10")
class Cifar10(Dataset):
    """CIFAR-10, binary version: the folder cifar-10-batches-bin with data_batch_1.bin ...
    data_batch_5.bin (50,000 training images) and test_batch.bin (10,000).

    Each file is a run of 3,073-byte records: the label, then 1,024 bytes each of the red,
    green and blue planes of a 32×32 image. X ``(N, 3, 32, 32)``, pixels in [0, 1].
    Class names come from batches.meta.txt when it is there.
    """

    def __init__(self, path: str):
        self.path = check_path(path)

    def batch_path(self, folder: Path, name: str) -> Path:
        path = folder / name
        if not path.is_file():
            if (folder / path.stem).is_file():
                raise DataError(f"{folder / path.stem}: a pickled batch (the CIFAR-10 'python "
                                f"version'); {CIFAR_PICKLE_HELP}")
            raise DataError(f"{folder}: missing {name}")
        return path

    def class_names(self, folder: Path) -> list[str] | None:
        meta = folder / "batches.meta.txt"
        if not meta.is_file():
            return None
        try:
            text = meta.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"{meta}: not UTF-8 text (byte {error.start}); the class names "
                            f"are one per line") from None
        names = [line.strip() for line in text.splitlines() if line.strip()]
        return names if len(names) == 10 else None

    def load(self, rng):
        folder = existing(Path(self.path))
        batches = [read_cifar_batch(self.batch_path(folder, name)) for name in CIFAR_TRAIN_FILES]
        images = np.concatenate([images for images, _ in batches])
        labels = np.concatenate([labels for _, labels in batches])
        test_images, test_labels = read_cifar_batch(self.batch_path(folder, CIFAR_TEST_FILE))
        return RawData(pixels(images), labels, classes=10, names=self.class_names(folder),
                       X_test=pixels(test_images), y_test=test_labels)
