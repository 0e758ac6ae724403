"""What a checkpoint holds, and how it goes back into a model.

A checkpoint is an ``.npz`` file of plain arrays (``storage.save_npz``): ``param/<name>``,
``buffer/<name>``, ``optim/<key>``, ``schedule/<key>``, ``meta`` (a JSON string with the
epoch, step, generator states, the best metric, the threads it computed on, the batch
parts of convolutional models, the versions of Python, NumPy and ``dl`` and the run's
config), for an epoch stopped midway ``perm`` (its batch order) and ``diagnostics/<key>``
(the epoch's statistics so far, when they are recorded), and what scoring raw inputs
takes: ``inputs`` (JSON) and ``preprocess/<i>/<statistic>`` (see ``inputs.py``;
checkpoints of earlier versions lack them). Nothing is copied into a model before every
name, shape and value has been checked against it.
"""

from __future__ import annotations

import json
import platform

import numpy as np

from . import __version__
from .nesting import NestingError, json_value
from .storage import RunError, load_npz_member


def versions() -> dict[str, str]:
    """What a run records about the software that wrote it."""
    return {"python": platform.python_version(), "numpy": np.__version__, "dl": __version__}


def pack_checkpoint(params: dict, buffers: dict, optimizer_state: dict,
                    schedule_state: dict, meta: dict) -> dict[str, np.ndarray]:
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"buffer/{k}": v for k, v in buffers.items()})
    arrays.update({f"optim/{k}": np.asarray(v) for k, v in optimizer_state.items()})
    arrays.update({f"schedule/{k}": np.asarray(v) for k, v in schedule_state.items()})
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


META_KEYS = {"epoch", "iteration", "step", "loss_sum", "last_finite_loss", "best_value",
             "best_epoch", "stop_best", "stale_epochs", "rng", "layer_rngs"}


META_KINDS = {"epoch": "a count", "iteration": "a count", "step": "a count",
              "stale_epochs": "a count", "best_epoch": "a count or null",
              "last_finite_loss": "a number or null", "best_value": "a number or null",
              "stop_best": "a number or null", "rng": "a generator state (an object)",
              "layer_rngs": "an object of generator states"}


def fits_meta(key: str, value) -> bool:
    """Whether a checkpoint's meta entry has the kind ``META_KINDS`` names."""
    kind = META_KINDS.get(key, "a number")
    if value is None:
        return kind.endswith("or null")
    if kind.startswith("a count"):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind.startswith("a number"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, dict)


def unpack_checkpoint(arrays: dict[str, np.ndarray]) -> dict:
    """Split a checkpoint into ``params``, ``buffers``, ``optim``, ``schedule``, ``meta``,
    ``perm`` (the batch order of an epoch stopped midway, else None), ``diagnostics``,
    ``inputs`` (its JSON text, None in an older checkpoint) and ``preprocess``
    (``"<i>/<statistic>"``: array)."""
    parts: dict = {"param": {}, "buffer": {}, "optim": {}, "schedule": {}, "diagnostics": {},
                   "preprocess": {}}
    for key, value in arrays.items():
        group, _, name = key.partition("/")
        if group in parts:
            parts[group][name] = value
    if "meta" not in arrays:
        raise RunError("checkpoint has no 'meta' entry")
    try:
        meta = json_value(str(arrays["meta"]))
    except NestingError as error:
        raise RunError(f"checkpoint 'meta' is {error}") from None
    except ValueError as error:
        raise RunError(f"checkpoint 'meta' is not JSON ({error})") from None
    if not isinstance(meta, dict) or not META_KEYS <= set(meta):
        missing = sorted(META_KEYS - set(meta)) if isinstance(meta, dict) else sorted(META_KEYS)
        raise RunError(f"checkpoint 'meta' lacks {', '.join(missing)}")
    for key in META_KEYS:
        if not fits_meta(key, meta[key]):
            raise RunError(f"checkpoint 'meta' entry {key!r} is {meta[key]!r}, "
                           f"expected {META_KINDS.get(key, 'a number')}")
    if not isinstance(meta.get("config", {}), dict):
        raise RunError(f"checkpoint 'meta' entry 'config' is {meta['config']!r}, expected "
                       f"the run's config (an object)")
    inputs = str(arrays["inputs"]) if "inputs" in arrays else None
    return {"params": parts["param"], "buffers": parts["buffer"], "optim": parts["optim"],
            "schedule": parts["schedule"], "meta": meta, "perm": arrays.get("perm"),
            "diagnostics": parts["diagnostics"], "inputs": inputs,
            "preprocess": parts["preprocess"]}


def check_batch_order(perm: np.ndarray | None, iteration: int, n: int, iterations: int) -> None:
    """Refuse the batch order of an epoch stopped after ``iteration`` of its ``iterations``
    unless it is a permutation of the ``n`` training samples (RunError). ``iteration``
    may be 0 (stopped before the epoch's first step, or between epochs, without an order)
    or equal ``iterations`` (stopped after its last batch, before the epoch's end was
    recorded)."""
    if iteration > iterations:
        raise RunError(f"checkpoint 'meta' entry 'iteration' is {iteration}, but an epoch "
                       f"has {iterations} iterations")
    if perm is None and iteration == 0:  # stopped between epochs
        return
    if perm is None:
        found = "missing"
    elif perm.dtype.kind not in "iu" or perm.shape != (n,):
        found = f"{perm.dtype} of shape {perm.shape}"
    elif not np.array_equal(np.sort(perm), np.arange(n)):
        found = "not a permutation (a sample repeated or out of range)"
    else:
        return
    raise RunError(f"checkpoint 'perm', the batch order of the epoch stopped midway, is "
                   f"{found}; expected a permutation of the {n} training samples")


def read_meta(path) -> dict | None:
    """The ``meta`` of the checkpoint at ``path``, read without its arrays; None when it
    cannot be read (resuming from it then says why)."""
    try:
        meta = json_value(str(load_npz_member(path, "meta")))
    except (RunError, NestingError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def check_compatible(expected: dict[str, np.ndarray], found: dict[str, np.ndarray],
                     what: str, source) -> None:
    """Refuse a checkpoint whose names or shapes differ from the model's, or whose
    values are not finite, before anything is copied."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        raise RunError(f"{source}: {what} do not match the model "
                       f"(missing: {missing or 'none'}; unexpected: {extra or 'none'})")
    for key, value in expected.items():
        if found[key].shape != value.shape:
            raise RunError(f"{source}: {what[:-1]} '{key}' has shape {found[key].shape}, "
                           f"the model expects {value.shape}")
        if found[key].dtype.kind != "f" or not np.all(np.isfinite(found[key])):
            raise RunError(f"{source}: {what[:-1]} '{key}' holds non-finite or non-float values")


def copy_into(target: dict[str, np.ndarray], source: dict[str, np.ndarray]) -> None:
    """Copy arrays in place, so the optimizer's references stay valid."""
    for key, value in target.items():
        value[...] = source[key]


def restore(model, state: dict, source) -> None:
    """Copy a checkpoint's parameters and buffers (``state``, read from ``source``) into
    ``model``, once both have been checked against it (``check_compatible``)."""
    check_compatible(model.params, state["params"], "parameters", source)
    check_compatible(model.buffers, state["buffers"], "buffers", source)
    copy_into(model.params, state["params"])
    copy_into(model.buffers, state["buffers"])
