"""Random draws that belong to a sample, not to a batch: the same numbers for sample i
whichever batch, part of a batch or process computes it.

A generator hands out numbers in the order they are asked for, so the dropout mask of
sample i would depend on which samples came before it in its batch. Data-parallel
training cuts a batch into parts, one per worker, and must still draw for sample i what
one process would. So the draws are counter-based: each number is a hash of

    (stream, sample key, call, position)

``stream`` names who draws (a dropout layer, the augmentation of a run), the sample key
names the sample in its pass over the data (``sample_keys(epoch, indices)``), ``call``
counts the draws made through one ``SampleDraws`` (so two draws never share numbers),
and ``position`` runs over the values a sample needs. The hash is SplitMix64's
finalizer (Steele, Lea & Flood, 2014): a bijection of 64-bit words whose outputs pass
the BigCrush tests even for consecutive inputs. It runs on whole NumPy arrays, as fast
as a generator's ``random``.

```python
draws = SampleDraws(stream=1234, keys=sample_keys(epoch=3, indices=np.array([7, 2, 9])))
u = draws.uniform((4,))          # (3, 4) in [0, 1): row j belongs to sample indices[j]
```
"""

from __future__ import annotations

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / φ: SplitMix64's increment
MIX_1, MIX_2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
SHIFTS = tuple(np.uint64(s) for s in (30, 27, 31, 11, 32))
FLOAT_UNIT = 2.0 ** -53  # 53 random bits give a float64 in [0, 1)


def mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer on an array of uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> SHIFTS[0])) * MIX_1
        z = (z ^ (z >> SHIFTS[1])) * MIX_2
    return z ^ (z >> SHIFTS[2])


def sample_keys(epoch: int, indices: np.ndarray) -> np.ndarray:
    """The key of each sample in one pass over the data: ``epoch · 2³² + index``, so a
    sample gets new draws every epoch, and the same ones however the epoch is split."""
    return (np.uint64(epoch) << SHIFTS[4]) | np.asarray(indices).astype(np.uint64)


def stream_of(*numbers: int) -> int:
    """A stream number made of several (a run's seed and a purpose, say)."""
    z = np.zeros(1, dtype=np.uint64)
    for number in numbers:
        z = mix(z + np.uint64(number % 2**64) + GOLDEN)
    return int(z[0])


class SampleDraws:
    """The draws of a batch whose samples have ``keys`` (N,), on one ``stream``; each
    method returns an array ``(N, *shape)`` whose row j depends on ``keys[j]`` alone."""

    def __init__(self, stream: int, keys: np.ndarray):
        self.stream = np.uint64(stream % 2**64)
        self.keys = np.asarray(keys, dtype=np.uint64)
        self.calls = 0

    def bits(self, shape: tuple[int, ...]) -> np.ndarray:
        """Random 64-bit words ``(N, *shape)``; each call gives new ones."""
        self.calls += 1
        with np.errstate(over="ignore"):
            start = mix(mix(self.keys ^ self.stream) + np.uint64(self.calls) * GOLDEN)
            count = int(np.prod(shape, dtype=np.int64))
            positions = np.arange(1, count + 1, dtype=np.uint64) * GOLDEN
            words = mix(start[:, None] + positions[None, :])
        return words.reshape((len(self.keys), *shape))

    def uniform(self, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Floats in [0, 1): the top 53 bits of each word, times 2⁻⁵³."""
        return (self.bits(shape) >> SHIFTS[3]).astype(np.float64) * FLOAT_UNIT

    def integers(self, high: int, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Integers in [0, high), ``⌊u · high⌋`` of a uniform u (a bias below 2⁻⁵³·high)."""
        return (self.uniform(shape) * high).astype(np.int64)

    def normal(self, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Standard normal values by Box–Muller: ``√(−2 ln u₁) · cos(2π u₂)`` with
        ``u₁ ∈ (0, 1]``."""
        u1 = 1.0 - self.uniform(shape)
        u2 = self.uniform(shape)
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
