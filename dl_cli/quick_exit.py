"""Leaving without the garbage collector's last passes, imported for that effect alone.

When CPython exits, it tears its modules down and runs the cyclic garbage collector over
every tracked object several times along the way: a process that imported NumPy, typer
and Rich pays for that after its last line of output (``benchmarks/README.md`` times
it). ``gc.freeze()`` moves every object to a permanent generation those passes skip;
reference counting still frees what it can, and the operating system takes back the
rest. Every ``atexit`` handler registered after this import still runs first (they run
last-in, first-out).

``dl`` imports it first thing, and so does the fork server of local sweep workers,
which holds the driver's output pipe open until it has exited.
"""

import atexit
import gc

atexit.register(gc.freeze)
