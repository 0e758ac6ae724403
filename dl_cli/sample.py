"""Text from a trained character model (``dl sample RUN_DIR``).

```python
char_model = load_char_model(run_dir, checkpoint="best")   # model, vocabulary, context T
text = generate(char_model, prime="The ", length=200, temperature=0.8,
                rng=np.random.default_rng(0))               # the characters after the prime
```

The model was trained on windows of T characters, each read from its initial state, so
it generates the same way: at every step it reads the last (at most T) characters, takes
the scores ``s`` of the last step and draws the next character from
``softmax(s / temperature)``. A temperature below 1 sharpens the distribution (safer,
more repetitive text), above 1 flattens it (more varied, more mistakes).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checkpoints import restore
from .config import load_saved_config
from .data.sequences import encode
from .inputs import Inputs
from .layout import RunLayout
from .nn.model import Model
from .registry import DATASETS, Registry
from .nesting import NestingError, json_value
from .runs import Run
from .storage import RunError, read_text
from .components import build_model


class SampleError(ValueError):
    """The run cannot be sampled from as asked; the message says why."""


@dataclass
class CharModel:
    """A character model restored from a run: ``model`` maps tokens ``(N, T)`` to scores
    ``(N, T, V)``; token i is the character ``vocab[i]``; ``context`` is the training
    window length T."""

    model: Model
    vocab: list[str]
    context: int

    def encode(self, text: str) -> np.ndarray:
        unknown = sorted(set(text) - set(self.vocab))
        if unknown:
            raise SampleError(f"the prime has characters outside the model's vocabulary: "
                              f"{', '.join(map(repr, unknown))}")
        return encode(text, self.vocab)


def read_vocab(run_dir: Path) -> list[str]:
    """The vocabulary a run folder keeps in vocab.json (what a checkpoint written before
    checkpoints held the vocabulary relies on)."""
    path = RunLayout(run_dir).vocab
    if not path.exists():
        raise SampleError(f"{run_dir} has no vocab.json (written when a text model starts "
                          f"training)")
    try:
        vocab = json_value(read_text(path))
    except RunError as error:
        raise SampleError(str(error)) from None
    except NestingError as error:
        raise SampleError(f"{path}: {error}") from None
    except json.JSONDecodeError as error:
        raise SampleError(f"{path}: not valid JSON ({error})") from None
    return checked_vocab(vocab, path)


def checked_vocab(vocab, source) -> list[str]:
    """``vocab`` if it is a non-empty list of characters, else SampleError naming
    ``source`` (vocab.json, or the checkpoint whose ``inputs`` hold it)."""
    if not isinstance(vocab, list) or not vocab or \
            not all(isinstance(c, str) and len(c) == 1 for c in vocab):
        raise SampleError(f"{source}: expected a non-empty list of characters (strings of one "
                          f"character each)")
    return vocab


def shown(character: str) -> str:
    """A drawn character as the terminal gets it: itself if printable (or a newline or a
    tab, which text holds), else escaped (``\\x1b``), so that a vocabulary forged with
    control characters cannot drive the terminal."""
    if character.isprintable() or character in "\n\t":
        return character
    return character.encode("unicode_escape").decode("ascii")


def load_char_model(run_dir: str | Path, checkpoint: str = "best",
                    allow_plugins: bool = False) -> CharModel:
    """Rebuild a run's model from its ``config.yaml`` and load its checkpoint.

    Raises SampleError when the folder is not a run of a ``text`` model, RunError when
    the checkpoint is missing or does not fit the model, ConfigError for a bad config
    (or one naming plugins, unless ``allow_plugins``).
    """
    run_dir = Path(run_dir)
    run = Run(run_dir)
    if not run.layout.is_run:
        raise SampleError(f"{run_dir} is not a run folder (no config.yaml)")
    cfg = load_saved_config(run.layout.config, allow_plugins)
    name, _ = Registry.split_spec(cfg.data.dataset)
    if name != "text":
        raise SampleError(f"{run_dir} trained on '{name}' data; dl sample needs a character "
                          f"model trained on 'text' data")
    state = run.load_checkpoint(checkpoint)
    inputs = Inputs.from_checkpoint(state, cfg.data.preprocess, run.layout.checkpoint(checkpoint))
    if inputs is not None and inputs.vocab:
        vocab = checked_vocab(inputs.vocab, f"{run.layout.checkpoint(checkpoint)}: vocab")
    else:
        vocab = read_vocab(run_dir)
    steps = DATASETS.create(cfg.data.dataset).steps
    model = build_model(cfg, (steps,))
    if model.out_shape != (steps, len(vocab)):
        raise SampleError(f"{run_dir}: the model outputs {model.out_shape} per sequence, "
                          f"expected scores ({steps}, {len(vocab)}) over the vocabulary")
    restore(model, state, run.layout.checkpoint(checkpoint))
    return CharModel(model, vocab, steps)


def characters(char_model: CharModel, prime: str, length: int, temperature: float,
               rng: np.random.Generator) -> Iterator[str]:
    """``length`` characters drawn one at a time after reading ``prime``, each yielded as
    it is drawn (a long sample prints as it goes). The prime and the temperature are
    checked before the first draw (SampleError)."""
    if not prime:
        raise SampleError("the prime must hold at least one character")
    if not (math.isfinite(temperature) and temperature > 0):
        raise SampleError(f"--temperature: expected a finite number > 0, got {temperature}")
    return draws(char_model, list(char_model.encode(prime)), length, temperature, rng)


def draws(char_model: CharModel, tokens: list[int], length: int, temperature: float,
          rng: np.random.Generator) -> Iterator[str]:
    for _ in range(length):
        window = np.array(tokens[-char_model.context:], dtype=np.int64)[None]
        scores = char_model.model.forward(window, train=False)[0, -1].astype(np.float64)
        logits = scores / temperature
        probs = np.exp(logits - logits.max())
        tokens.append(int(rng.choice(len(probs), p=probs / probs.sum())))
        yield char_model.vocab[tokens[-1]]


def generate(char_model: CharModel, prime: str, length: int, temperature: float,
             rng: np.random.Generator) -> str:
    """``length`` characters drawn one at a time after reading ``prime``."""
    return "".join(characters(char_model, prime, length, temperature, rng))
