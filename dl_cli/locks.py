"""One writer per folder: the lock of a run folder (``run.lock``) and of a sweep folder
(``driver.lock``), on one machine or on many sharing a file system.

A lock is a small JSON file naming its holder:

```
{"pid": 4242, "host": "node-3", "boot": "5f1c...", "start": 1234567, "since": 1767000000.1}
```

``host`` is the machine's name, ``boot`` its boot id (Linux), ``start`` the holder's start
time in clock ticks since boot (Linux), ``since`` when the lock was taken (seconds since
the epoch). It is taken atomically *with* its content: the JSON is written to a temp file
that is then hard-linked to the lock's name (``os.link`` fails when the name exists), so
no process ever reads a lock that is half written. Who holds it:

| the lock names | held while |
|---|---|
| a process of this machine | that process runs *and* started when the lock says (a PID reused after a crash is not the holder; neither is any process after a reboot) |
| a process of another machine | always: this one cannot look. The message names the host; ``--break-lock`` takes the folder over |
| nothing readable | younger than ``GRACE_S`` seconds (someone may be writing it by another way), then stale |

A stale lock is broken and taken under an ``flock`` of the folder, so two processes
that both find it stale cannot both take it (the first takes it; the second finds the
first's lock, alive). Where the file system has no ``flock`` (some network file systems)
the guard is skipped; only the holder's own host may break a lock there anyway.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .nesting import json_value

try:
    import fcntl
except ImportError:  # Windows: no flock, and the guard is skipped
    fcntl = None

GRACE_S = 10.0  # an unreadable lock younger than this may be being written: it is held


class LockHeld(RuntimeError):
    """The folder is locked by another process; the message names it."""


def this_host() -> str:
    return socket.gethostname()


def boot_id() -> str | None:
    """The id of this boot of the machine (Linux), None where it cannot be read."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def proc_stat(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/PID/stat`` after "pid (command)": state first (field 3);
    None where there is no /proc or no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()


def process_start(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (field 22 of
    ``/proc/PID/stat``); None where it cannot be read."""
    fields = proc_stat(pid)
    try:
        return int(fields[19])
    except (TypeError, IndexError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (perhaps another user's): it
    exists and has not exited (a zombie, not yet reaped by its parent, has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except (OverflowError, ValueError):
        return False
    fields = proc_stat(pid)
    return not (fields and fields[0] in (b"Z", b"X"))


@dataclass(frozen=True)
class Holder:
    """Who a lock says holds it."""

    pid: int
    host: str
    boot: str | None = None
    start: int | None = None
    since: float | None = None

    @classmethod
    def me(cls) -> "Holder":
        return cls(os.getpid(), this_host(), boot_id(), process_start(os.getpid()),
                   round(time.time(), 3))

    def to_json(self) -> str:
        return json.dumps({"pid": self.pid, "host": self.host, "boot": self.boot,
                           "start": self.start, "since": self.since})

    @property
    def here(self) -> bool:
        return self.host == this_host()

    def is_me(self) -> bool:
        return self.here and self.pid == os.getpid()

    def alive(self) -> bool:
        """Whether the holder still runs; only asked of a holder on this machine."""
        if self.boot is not None and self.boot != boot_id():
            return False  # the machine restarted since
        if not process_alive(self.pid):
            return False
        now = process_start(self.pid)
        return self.start is None or now is None or now == self.start

    def describe(self) -> str:
        where = "" if self.here else f" on host {self.host}"
        when = "" if self.since is None else \
            f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.since))}"
        return f"process {self.pid}{where}{when}"


def parse_holder(text: str) -> Holder | None:
    """The holder a lock's text names: the JSON above, or a bare PID (the locks of
    earlier versions, always of this host); None for anything else."""
    text = text.strip()
    if text.isascii() and text.isdigit() and len(text) < 20:
        return Holder(int(text), this_host())
    try:
        raw = json_value(text)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    pid, host = raw.get("pid"), raw.get("host")
    if not (type(pid) is int and 0 < pid < 2**31 and isinstance(host, str)):
        return None
    boot, start, since = raw.get("boot"), raw.get("start"), raw.get("since")
    return Holder(pid, host, boot if isinstance(boot, str) else None,
                  start if type(start) is int else None,
                  float(since) if type(since) in (int, float) else None)


def read_holder(path: Path) -> Holder | None:
    """The holder named by the lock at ``path``; None when it is gone or unreadable."""
    try:
        with open(path, "rb") as f:
            text = f.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return None
    return parse_holder(text)


@contextmanager
def folder_guard(folder: Path):
    """An exclusive ``flock`` of ``folder`` for the block, where the file system has one."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        yield
        return
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                pass
        yield
    finally:
        os.close(fd)  # releases the flock


class Lock:
    """The lock file at ``path`` of the folder it guards; messages say the folder
    ``verb`` its holder ("is in use by", "is being run by")."""

    def __init__(self, path: str | Path, verb: str = "is in use by"):
        self.path = Path(path)
        self.verb = verb

    def holder(self) -> Holder | None:
        return read_holder(self.path)

    def take(self, break_lock: bool = False) -> None:
        """Take the lock, taking over a stale one; LockHeld when another process holds
        it. ``break_lock``: take it from a holder on another machine too (the user says
        that process has ended)."""
        folder = self.path.parent
        with folder_guard(folder):
            if self._create():
                return
            held = self._held_by(break_lock)
            if held is not None:
                raise LockHeld(held)
            self.path.unlink(missing_ok=True)
            if not self._create():
                raise LockHeld(f"{folder} {self.verb} another process that took its lock "
                               f"{self.path} at the same moment")

    def _held_by(self, break_lock: bool) -> str | None:
        """Why the existing lock cannot be taken over, or None when it is stale."""
        holder = self.holder()
        folder = self.path.parent
        if holder is None:
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return None
            if age < GRACE_S:
                return (f"{folder} {self.verb} another process: its lock {self.path} was "
                        f"written {max(age, 0):.1f} s ago and cannot be read yet; try again "
                        f"in a moment")
            return None
        if holder.here:
            if holder.alive():
                return f"{folder} {self.verb} {holder.describe()} (lock file {self.path})"
            return None
        if break_lock:
            return None
        return (f"{folder} {self.verb} {holder.describe()} (lock file {self.path}); this "
                f"machine cannot see whether that process still runs. If it has ended, take "
                f"the folder over with --break-lock")

    def _create(self) -> bool:
        """Create the lock naming this process, atomically with its content; False when
        it exists already."""
        text = Holder.me().to_json()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                         0o644)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        except OSError as error:
            raise LockHeld(f"cannot take the lock {self.path} ({error.strerror or error}); "
                           f"the folder must be writable") from None
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links here, or a new holder removed the temp file
            return self._create_in_place(text)
        finally:
            tmp.unlink(missing_ok=True)

    def _create_in_place(self, text: str) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return True

    def release(self) -> None:
        """Remove the lock if it names this process."""
        holder = self.holder()
        if holder is not None and holder.is_me():
            self.path.unlink(missing_ok=True)
