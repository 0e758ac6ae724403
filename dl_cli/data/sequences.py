"""Sequence datasets for recurrent networks: inputs ``(N, T, D)`` values or ``(N, T)``
integer tokens.

- ``sine``: the next value of a noisy sine wave from a window of T values (regression,
  sequence to one);
- ``adding``: the adding problem, the classic test of long-range memory (regression,
  sequence to one);
- ``text``: character-level language modelling on a UTF-8 file, or on the project's own
  short corpus (``corpus.txt``) when no path is given (a prediction per step);
- ``hello``: the notes' toy, read "hell" and predict "ello" (a prediction per step).

Token datasets state their vocabulary (``RawData.vocab``): token i stands for the
character ``vocab[i]``. The run folder keeps it as ``vocab.json``, which ``dl sample``
reads to turn tokens back into text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..registry import DATASETS
from ..checks import check_bool, check_float, check_int
from .base import DataError, Dataset, RawData
from .files import check_path, existing_file

CORPUS = Path(__file__).with_name("corpus.txt")


@DATASETS.register("sine")
class Sine(Dataset):
    """Predict the next value of a noisy sine wave from the T values before it.

    Wave n has a period ``P_n ~ U[min_period, max_period]`` (in steps) and a phase
    ``φ_n ~ U[0, 2π)``:

        X[n, t] = sin(2π t / P_n + φ_n) + noise·ε,   t = 0 … T−1,   ε ~ N(0, 1)
        y[n]    = sin(2π T / P_n + φ_n)

    The target is the noise-free next value, in [−1, 1], so a model that averages the
    noise away can score an MSE well below ``noise²``. Shapes: X ``(samples, steps, 1)``,
    y ``(samples,)``.
    """

    def __init__(self, samples: int = 2000, steps: int = 20, noise: float = 0.05,
                 min_period: float = 8.0, max_period: float = 32.0):
        self.samples = check_int("samples", samples)
        self.steps = check_int("steps", steps)
        self.noise = check_float("noise", noise)
        self.min_period = check_float("min_period", min_period, 2.0)
        self.max_period = check_float("max_period", max_period, 2.0)
        if self.max_period < self.min_period:
            raise ValueError(f"max_period must be >= min_period ({self.min_period}), "
                             f"got {max_period!r}")

    def load(self, rng):
        N, T = self.samples, self.steps
        period = rng.uniform(self.min_period, self.max_period, size=(N, 1))
        phase = rng.uniform(0.0, 2.0 * np.pi, size=(N, 1))
        wave = np.sin(2.0 * np.pi * np.arange(T + 1) / period + phase)
        X = wave[:, :T] + self.noise * rng.standard_normal((N, T))
        return RawData(X[:, :, None], wave[:, T], task="regression")


@DATASETS.register("adding")
class Adding(Dataset):
    """The adding problem (Hochreiter & Schmidhuber, 1997): read T pairs
    ``(value, marker)`` and output the sum of the two values whose marker is 1.

    Values are ``U[0, 1]``; exactly two markers are 1, one at a position drawn from the
    first half of the sequence and one from the second half, so the first marked value
    must be remembered for about T/2 steps. Shapes: X ``(samples, steps, 2)`` (channel 0
    the values, channel 1 the markers), y ``(samples,)`` in [0, 2].

    Always predicting 1 scores an MSE of 1/6 ≈ 0.167 (the variance of a sum of two
    uniforms); a model below that has learned to carry the first value to the end.
    """

    def __init__(self, samples: int = 5000, steps: int = 50):
        self.samples = check_int("samples", samples)
        self.steps = check_int("steps", steps, 2)

    def load(self, rng):
        N, T = self.samples, self.steps
        values = rng.uniform(0.0, 1.0, size=(N, T))
        first = rng.integers(0, T // 2, size=N)
        second = rng.integers(T // 2, T, size=N)
        rows = np.arange(N)
        markers = np.zeros((N, T))
        markers[rows, first] = markers[rows, second] = 1.0
        y = values[rows, first] + values[rows, second]
        return RawData(np.stack([values, markers], axis=-1), y, task="regression")


def char_vocab(text: str) -> list[str]:
    """The distinct characters of ``text``, sorted: token i is ``vocab[i]``."""
    return sorted(set(text))


def encode(text: str, vocab: list[str]) -> np.ndarray:
    """``(len(text),)`` int64 tokens of characters that are all in ``vocab``."""
    index = {char: i for i, char in enumerate(vocab)}
    return np.array([index[char] for char in text], dtype=np.int64)


def decode(tokens, vocab: list[str]) -> str:
    return "".join(vocab[int(i)] for i in tokens)


@DATASETS.register("text")
class Text(Dataset):
    """Character-level language modelling: read T characters, predict each next one.

    The text (a UTF-8 file, or the project's corpus when ``path`` is not given) becomes
    tokens over its sorted distinct characters. Window k starts at ``s = k·stride``:

        X[k] = tokens[s : s + T]        y[k] = tokens[s + 1 : s + T + 1]

    so ``y[k, t]`` is the character after ``X[k, t]``. The default stride T gives
    windows that do not overlap, so the validation split holds text the model never
    trained on; a smaller stride gives more (overlapping) windows. Shapes: X and y
    ``(windows, steps)`` int64, classes = vocabulary size.
    """

    def __init__(self, path: str | None = None, steps: int = 50, stride: int | None = None):
        self.path = None if path is None else check_path(path)
        self.steps = check_int("steps", steps)
        self.stride = None if stride is None else check_int("stride", stride)

    def read(self) -> str:
        path = CORPUS if self.path is None else existing_file(Path(self.path))
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
        except IsADirectoryError:
            raise DataError(f"{path}: is a folder, not a text file") from None

    def token_count(self) -> int:
        return len(char_vocab(self.read()))

    def load(self, rng):
        text = self.read()
        T, stride = self.steps, self.stride or self.steps
        if len(text) < T + 1:
            raise DataError(f"{self.path or CORPUS}: {len(text)} characters, fewer than "
                            f"steps + 1 = {T + 1} needed for one window")
        vocab = char_vocab(text)
        tokens = encode(text, vocab)
        starts = np.arange(0, len(text) - T, stride)
        window = starts[:, None] + np.arange(T)
        return RawData(tokens[window], tokens[window + 1], classes=len(vocab), vocab=vocab)


@DATASETS.register("hello")
class Hello(Dataset):
    """The notes' toy: with the vocabulary h, e, l, o, read "h, e, l, l" and predict
    "e, l, l, o", one character per step.

    X ``(samples, 4)`` tokens ``[0, 1, 2, 2]`` and y ``(samples, 4)`` tokens
    ``[1, 2, 2, 3]`` (``samples`` copies of the one sequence); with ``one_hot``, X is
    ``(samples, 4, 4)`` one-hot vectors, the notes' input, for an RNN without an
    embedding. The second "l" must be followed by "o" and the first by "l": the
    prediction depends on the state, not only on the current character.
    """

    word = "hello"
    vocab = ["h", "e", "l", "o"]

    def __init__(self, samples: int = 1, one_hot: bool = False):
        self.samples = check_int("samples", samples)
        self.one_hot = check_bool("one_hot", one_hot)

    def token_count(self) -> int:
        return len(self.vocab)

    def load(self, rng):
        tokens = np.tile(encode(self.word, self.vocab), (self.samples, 1))
        X, y = tokens[:, :-1], tokens[:, 1:]
        if self.one_hot:
            X = np.eye(len(self.vocab))[X]
        return RawData(X, y, classes=len(self.vocab), vocab=list(self.vocab))
