"""A config that asks for arrays no machine can hold: NumPy raises MemoryError, or a
ValueError when the size does not even fit its index type ("array is too big").
Commands turn either into exit 2 with ``out_of_memory``'s advice."""

from __future__ import annotations

TOO_LARGE = ("array is too big", "Maximum allowed dimension exceeded")


def too_large(error: BaseException) -> bool:
    """Whether ``error`` says an array could not be made for its size."""
    return isinstance(error, MemoryError) or (
        isinstance(error, ValueError) and any(text in str(error) for text in TOO_LARGE))


def out_of_memory(error: BaseException) -> str:
    """What to say when the config asks for more memory than there is."""
    return (f"out of memory: {error}. The model, its batch or its data is too large for this "
            f"machine: fewer units or filters, a smaller batch_size, fewer samples or a "
            f"smaller input")
