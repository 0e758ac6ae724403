"""The threads `dl` computes on.

NumPy runs an elementwise pass (a ufunc, a copy) on one core, while its BLAS runs a
matrix product on all of its threads. Inside ``computing_on(n)``, BLAS is held to one
thread and the layers whose elementwise work weighs as much as their products, or
that are nothing but elementwise passes (conv2d's im2col, max pooling, ReLU,
batchnorm), cut their batch into ``n`` parts instead, with ``in_parts``: each part is
done by a thread of its own, products and elementwise passes alike, since NumPy
releases the GIL inside both. BLAS must stay on one thread meanwhile: after a product,
its other threads keep spinning for more work for a while, on the very cores the parts
need. The other layers compute on the whole batch: their
products run on BLAS's threads outside ``computing_on`` and on one thread inside.

The parts compute what the whole batch would, up to rounding: BLAS may sum the rows
of a smaller block in another order, and the sums over the batch (weight and bias
gradients, batchnorm's statistics) add the parts' partial sums in order
(``summed_in_parts``). So results depend on ``n`` as they would on the number of BLAS
threads, and on nothing else. Work under ``SMALL`` elements is not split: starting the
parts would cost more than it saves.

How many threads make sense: no more than the cores this process may run on
(``cores``), and never more than BLAS runs (``blas_most``): asked for more, BLAS
quietly runs the most it was built for, and it takes the count as a C int
(``MOST_THREADS``). ``benchmarks/README.md`` has the numbers behind both limits.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

SMALL = 1 << 16
MOST_THREADS = 2**31 - 1  # the largest C int: BLAS libraries take the count as one

T = TypeVar("T")

_parts = 1
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def blas_threads() -> int:
    """The threads NumPy's BLAS uses as things stand: NumPy's own library where others
    (PyTorch's) are loaded too; 1 when threadpoolctl finds none."""
    from threadpoolctl import threadpool_info

    pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    numpy_pools = [pool for pool in pools if "numpy" in pool["filepath"]]
    return (numpy_pools or pools)[0]["num_threads"] if pools else 1


def blas_most(count: int) -> int:
    """How many threads NumPy's BLAS runs when asked for ``count`` (at most
    ``MOST_THREADS``): it asks, reads the answer and puts the threads back as they were;
    ``count`` itself when threadpoolctl finds no BLAS."""
    import numpy  # noqa: F401  (it loads its BLAS)
    from threadpoolctl import threadpool_info, threadpool_limits

    if not any(pool["user_api"] == "blas" for pool in threadpool_info()):
        return count
    with threadpool_limits(limits=min(count, MOST_THREADS), user_api="blas"):
        return blas_threads()


def cores() -> int:
    """The cores this process may run on (its CPU affinity, where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def parts() -> int:
    """How many parts a layer cuts its batch into (1 outside ``computing_on``)."""
    return _parts


@contextmanager
def computing_on(count: int) -> Iterator[None]:
    """Inside the block: BLAS on one thread and batches cut into ``count`` parts (with
    ``count == 1``, everything on one thread)."""
    global _parts
    from threadpoolctl import threadpool_limits

    saved = _parts
    _parts = count
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        _parts = saved


def split(n: int, count: int) -> list[slice]:
    """``range(n)`` as ``count`` contiguous slices as even as can be, none empty."""
    count = max(1, min(count, n))
    bounds = [n * i // count for i in range(count + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds, bounds[1:])]


def in_parts(n: int, work: Callable[[slice], T], size: int) -> list[T]:
    """``[work(part) for part in the parts of range(n)]``, the parts run at once; ``size``,
    the number of elements the work touches, decides whether splitting pays."""
    if _parts == 1 or size < SMALL:
        return [work(slice(0, n))]
    return each(split(n, _parts), work)


def summed_in_parts(n: int, work: Callable[[slice], tuple], size: int) -> tuple:
    """``in_parts`` for work that returns its part's share of sums over the batch (a
    layer's weight and bias gradients): each share summed over the parts, in the parts'
    order."""
    per_part = in_parts(n, work, size)  # [(dW of the first part, db of the first part), ...]
    return tuple(sum(across_parts) for across_parts in zip(*per_part))


def each(items: list, work: Callable[..., T]) -> list[T]:
    """``[work(item) for item in items]``, one thread per item, in the items' order."""
    global _pool, _pool_size
    if len(items) == 1:
        return [work(items[0])]
    if _pool_size < len(items) - 1:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(max_workers=len(items) - 1, thread_name_prefix="dl-part")
        _pool_size = len(items) - 1
    others = [_pool.submit(work, item) for item in items[1:]]
    try:
        first = work(items[0])
    finally:
        wait(others)
    return [first] + [future.result() for future in others]
