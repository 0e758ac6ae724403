"""The sweep folder (its files: ``layout.SweepLayout``): made, checked before a resume,
and run by one driver at a time."""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from pathlib import Path

import yaml

from .. import __version__
from ..checks import ConfigError, describe
from ..config import config_to_dict, dump_config, flatten
from ..config.validation import validate
from ..config.yaml12 import ConfigDumper, read_yaml
from ..layout import RunLayout, SweepLayout, new_folder
from ..locks import Lock, LockHeld
from ..storage import RunError, refuse_links, write_text
from ..training import config_hash
from .ledger import Ledger, SweepError, TrialState
from .results import show
from .spec import SpecError, SweepSpec, parse_spec

def dump_yaml(data) -> str:
    return yaml.dump(data, Dumper=ConfigDumper, sort_keys=False, default_flow_style=None,
                     allow_unicode=True)


def changed_keys(old: dict, new: dict) -> str:
    a, b = flatten(old), flatten(new)
    keys = [k for k in sorted(set(a) | set(b)) if json.dumps(a.get(k)) != json.dumps(b.get(k))]
    shown = ", ".join(f"{k}: {show(a.get(k))} → {show(b.get(k))}" for k in keys[:5])
    return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def base_hash(cfg) -> str:
    """The base config's content, whatever the order of the keys in its free-form dicts
    (``training.config_hash`` hashes the YAML text, which keeps the user's order)."""
    text = json.dumps(config_to_dict(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def order_change(saved: dict, raw: dict) -> str | None:
    """How the order of ``params`` or ``variants`` changed (it numbers the trials, and the
    spec hash sorts keys): ``params order: a, b → b, a``, or None."""
    for key in ("params", "variants"):
        old, new = list(saved.get(key) or {}), list(raw.get(key) or {})
        if old != new and sorted(old) == sorted(new):
            return f"{key} order: {', '.join(old)} → {', '.join(new)}"
    return None


def read_mapping(path: Path) -> dict:
    """A YAML file of a sweep folder (spec.yaml, base.yaml); SweepError naming it when it
    cannot be read or holds no mapping."""
    try:
        return read_yaml(path)
    except ConfigError as error:
        raise SweepError(str(error)) from None


def saved_spec(folder: Path) -> SweepSpec:
    """The spec a sweep folder was started with, from its spec.yaml."""
    path = SweepLayout(folder).spec
    raw = read_mapping(path)
    if not isinstance(raw.get("base"), str):
        raise SweepError(f"{path}: base: expected the path of the base config, "
                         f"got {describe(raw.get('base'))}")
    try:
        return parse_spec(raw)
    except SpecError as error:
        raise SweepError(f"{path}: {error}") from None


def trial_table(folder: Path, spec: SweepSpec) -> dict[int, TrialState]:
    """The trial states of the sweep in ``folder``, refused when a trial is not one of
    ``spec`` (its spec.yaml): a ledger damaged, or copied from another sweep."""
    ledger = Ledger(SweepLayout(folder).ledger)
    table = ledger.table()
    for state in table.values():
        missing = [path for path in spec.params if path not in state.params]
        if missing:
            raise SweepError(f"{ledger.path}: trial {state.index} has no value of "
                             f"{missing[0]}, which the spec varies")
        if spec.variants and state.variant not in spec.variants:
            raise SweepError(f"{ledger.path}: trial {state.index} trains variant "
                             f"{state.variant!r}, which the spec does not name")
    return table


def check_files(folder: Path) -> None:
    """Refuse a folder holding a directory where a sweep keeps one of its files (the
    sweep would fail only when it writes there, after training its trials), or a
    symbolic link in place of one of its files or trial folders."""
    files = SweepLayout(folder).files()
    for path in files:
        if path.is_dir() and not path.is_symlink():
            raise SweepError(f"{path}: is a directory, not a file; move it out of the sweep "
                             f"folder")
    trials = sorted(p.name for p in Path(folder).glob("trial-*")) if Path(folder).is_dir() else []
    try:
        refuse_links(folder, [p.name for p in files] + trials)
    except RunError as error:
        raise SweepError(str(error)) from None


def open_sweep(spec: SweepSpec, base: dict, sweep_dir: Path | None = None,
               resume: Path | None = None, note: str = "", placement: dict | None = None,
               break_lock: bool = False) -> Path:
    """A new sweep folder holding spec.yaml and base.yaml, or the folder to resume after
    checking that neither the spec nor the base config changed. ``placement`` (executor,
    workers, address) goes into the ledger for a later resume to run the same way;
    ``break_lock``: take the folder over from a driver on another machine."""
    base_cfg = validate(base)
    header = {"spec_hash": spec.spec_hash(), "base_hash": base_hash(base_cfg),
              "version": __version__, "backend": note, **(placement or {})}
    if resume is not None:
        folder, layout = Path(resume), SweepLayout(resume)
        check_files(folder)
        ledger = Ledger(layout.ledger)
        recorded = ledger.header()
        if recorded is None:
            raise SweepError(f"{folder} is not a sweep folder (no ledger.jsonl with a header)")
        saved = read_mapping(layout.spec)
        saved.pop("base", None)
        now = {k: v for k, v in spec.raw.items() if k != "base"}
        change = (changed_keys(saved, now) if recorded["spec_hash"] != header["spec_hash"]
                  else order_change(saved, now))
        if change is not None:
            raise SweepError(f"refusing to resume {folder}: the spec changed since the sweep "
                             f"started ({change}); start a new sweep, or restore the spec")
        trial_table(folder, spec)  # refuses trials the spec cannot have made
        # config_hash: the base hash of sweeps started before it was canonical
        if recorded.get("base_hash") not in (header["base_hash"], config_hash(base_cfg)):
            saved = read_mapping(layout.base)
            raise SweepError(f"refusing to resume {folder}: the base config {spec.base} changed "
                             f"since the sweep started ({changed_keys(saved, config_to_dict(base_cfg))}); "
                             f"trials would not be comparable")
        hold_lock(folder, break_lock)  # before writing: a second driver must not touch the ledger
        try:
            ledger.append("sweep", resumed=True, **header)
        except OSError:
            release_lock(folder)
            raise
        return folder
    folder = Path(sweep_dir) if sweep_dir is not None else new_folder(base_cfg.runs_dir, spec.name)
    layout = SweepLayout(folder)
    if layout.is_sweep:
        raise SweepError(f"{folder} already holds a sweep; continue it with --resume {folder}")
    if RunLayout(folder).is_run:
        raise SweepError(f"{folder} is a run folder (it holds config.yaml); a sweep needs a "
                         f"folder of its own: a new or empty one")
    check_files(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SweepError(f"cannot make the sweep folder {folder} ({error.strerror or error})") from None
    hold_lock(folder)
    write_text(layout.spec, dump_yaml(spec.raw))
    write_text(layout.base, dump_config(base_cfg))
    Ledger(layout.ledger).append("sweep", **header)
    return folder


_HELD: set[Path] = set()  # folders whose lock open_sweep took for this process's driver


def hold_lock(folder: Path, break_lock: bool = False) -> None:
    """Take the folder's lock now and keep it for the ``sweep_lock`` of this process's
    driver (``open_sweep`` writes to the ledger only once it holds the lock)."""
    key = Path(folder).resolve()
    if key not in _HELD:
        take_lock(folder, break_lock)
        _HELD.add(key)


def release_lock(folder: Path) -> None:
    _HELD.discard(Path(folder).resolve())
    driver_lock(folder).release()


@contextmanager
def sweep_lock(folder: Path):
    """One driver per sweep folder, for as long as the block runs: the lock ``open_sweep``
    took for this process, or a new one."""
    key = Path(folder).resolve()
    if key in _HELD:
        _HELD.discard(key)
    else:
        take_lock(folder)
    try:
        yield
    finally:
        driver_lock(folder).release()


def take_lock(folder: Path, break_lock: bool = False) -> None:
    """Take ``driver.lock`` for this process (``locks.Lock``); ``break_lock`` takes it from a
    driver on another machine too."""
    try:
        driver_lock(folder).take(break_lock)
    except LockHeld as error:
        raise SweepError(str(error)) from None


def driver_lock(folder: Path) -> Lock:
    return Lock(SweepLayout(folder).lock, "is being run by")
