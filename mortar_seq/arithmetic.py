"""How taking values moves a stored counter: plain integers, no database.

A counter stores the last value it handed out (None before the first). Taking *count*
values computes its new stored value from the old one; everything that could overflow
is worked out here, in Python, so the SQL built from it only adds numbers known to fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .definition import INT64_MAX, INT64_MIN, Definition


@dataclass(frozen=True)
class Advance:
    """The numbers one call needs to move a counter forward by *count* values."""

    from_nothing: int | None  # new value when nothing was handed out; None: past 64 bits
    forward: int  # added to the stored value
    wrap_at: int | None  # stored values at or past this (in the direction of step) wrap around
    backward: int  # added instead when they wrap
    limit: int | None  # stored values past this would leave 64 bits; None: never


def cycle_length(definition: Definition) -> int:
    """Return how many values a resetting sequence hands out before it starts again.

    >>> cycle_length(Definition("minute", start=0, reset=60))
    60
    >>> cycle_length(Definition("odd", start=1, step=2, reset=10))
    5
    """
    if definition.reset is None:
        raise ValueError(f"{definition.name!r} does not reset")
    span, stride = abs(definition.reset - definition.start), abs(definition.step)
    return (span + stride - 1) // stride


def advance(definition: Definition, count: int) -> Advance:
    """Return how taking *count* values moves the counter of *definition*.

    >>> advance(Definition("x"), 3)
    Advance(from_nothing=3, forward=3, wrap_at=None, backward=0, limit=9223372036854775804)
    >>> advance(Definition("m", start=0, reset=60), 1)
    Advance(from_nothing=0, forward=1, wrap_at=59, backward=-59, limit=None)
    """
    step = definition.step
    if definition.reset is None:
        first = definition.start + step * (count - 1)
        total = step * count
        limit = INT64_MAX - total if step > 0 else INT64_MIN - total
        fits = INT64_MIN <= first <= INT64_MAX
        return Advance(first if fits else None, total, None, 0, limit)
    length = cycle_length(definition)
    shift = count % length
    first = definition.start + step * ((count - 1) % length)
    if shift == 0:
        return Advance(first, 0, None, 0, None)
    wrap_at = definition.start + step * (length - shift)
    return Advance(first, step * shift, wrap_at, step * (shift - length), None)


def handed_out(definition: Definition, last: int, count: int) -> Sequence[int]:
    """Return the *count* values a call handed out, given the *last* one: a range where contiguous.

    >>> handed_out(Definition("x"), 5, 3)
    range(3, 6)
    >>> handed_out(Definition("m", start=0, reset=60), 1, 4)
    [58, 59, 0, 1]
    """
    step = definition.step
    first = last - step * (count - 1)
    if definition.reset is None:
        return range(first, last + step, step)
    length = cycle_length(definition)
    position = (last - definition.start) // step
    if count <= position + 1:
        return range(first, last + step, step)
    return [
        definition.start + step * ((position - count + 1 + offset) % length)
        for offset in range(count)
    ]
