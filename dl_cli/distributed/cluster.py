"""Reaching Dask: a LocalCluster of K worker processes on this machine, or an existing
cluster by its scheduler's address or scheduler file. Sweeps (``sweep.executors``) and
data-parallel training connect the same way.

```python
cluster = connect(workers=2, address=None)     # starts a LocalCluster of 2 processes
cluster.client.submit(...); cluster.where      # "a LocalCluster of 2 processes"
cluster.close()
```
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..nesting import json_value


# Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, to give memory back to
# the system sooner. It also fixes glibc's mmap threshold, so that every large temporary
# (a convolution's im2col buffers) is mapped and unmapped again each step: W2's steps
# took 1.8 times as long (benchmarks/README.md). A LocalCluster's workers keep glibc's own.
KEEP_MALLOC = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


class ClusterError(RuntimeError):
    """Dask is not installed, or its cluster cannot be reached."""


@dataclass
class Cluster:
    """A connected ``distributed.Client``, where it is connected, and how to let go."""

    client: object
    where: str
    closers: list[Callable] = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


def scheduler_address(path: Path) -> str:
    """The address in a Dask scheduler file: the JSON file ``dask scheduler
    --scheduler-file PATH`` writes, ``{"address": "tcp://host:8786", ...}``."""
    try:
        info = json_value(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ClusterError(f"--address {path}: cannot read it ({error.strerror})") from None
    except ValueError:  # not JSON, or not UTF-8 text
        info = None
    if not isinstance(info, dict) or not isinstance(info.get("address"), str):
        raise ClusterError(f"--address {path}: not a Dask scheduler file; expected the JSON "
                           f"file that dask scheduler --scheduler-file writes (it holds the "
                           f"scheduler's \"address\"), or an address such as tcp://host:8786")
    return info["address"]


def connect(workers: int, address: str | None, quiet: bool = False) -> Cluster:
    """A client of a new LocalCluster of ``workers`` processes of one thread each (no
    dashboard, glibc's malloc as it is), or of the cluster at ``address``. ``quiet``: Dask logs nothing in this
    process (where a LocalCluster's scheduler runs), as training reports a lost worker
    itself, and Dask would call the shard that went with it lost for good."""
    try:
        import dask
        import distributed
    except ImportError:
        raise ClusterError("Dask is an extra: pip install 'dl-cli[dask]'") from None
    if quiet:
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
    try:
        if address is None:
            with warnings.catch_warnings(), dask.config.set({KEEP_MALLOC: None}):
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                                   processes=True, dashboard_address=None)
            client = distributed.Client(cluster)
            return Cluster(client, f"a LocalCluster of {workers} processes",
                           [client.close, cluster.close])
        if Path(address).is_file():
            client = distributed.Client(scheduler_address(Path(address)), timeout=30)
            return Cluster(client, f"the scheduler of {address}", [client.close])
        client = distributed.Client(address, timeout=30)
        return Cluster(client, address, [client.close])
    except (OSError, TimeoutError, ValueError) as error:
        raise ClusterError(f"cannot reach the Dask scheduler {address}: {error}") from None


def free_workers(client, count: int, taken: list[str], wait: float) -> list[str]:
    """The addresses of ``count`` workers of the cluster not in ``taken``, waiting up to
    ``wait`` seconds for them to join (a LocalCluster's nanny restarts a lost worker in
    a few); WorkersLost if they do not."""
    from .source import WorkersLost

    deadline = time.monotonic() + wait
    while True:
        free = sorted(set(client.scheduler_info()["workers"]) - set(taken))
        if len(free) >= count:
            return free[:count]
        if time.monotonic() > deadline:
            raise WorkersLost(f"{count} worker{'s' * (count > 1)} needed, {len(free)} free "
                              f"after waiting {wait:g} s")
        time.sleep(0.1)
