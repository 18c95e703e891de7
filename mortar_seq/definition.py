"""What is stored about a sequence, and the checks that keep bad input out of the database."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SequenceConfigError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
NAME_MAX = 100


@dataclass(frozen=True)
class Definition:
    """A sequence's name and settings, and which of its counters is meant (one per key)."""

    name: str
    start: int = 1
    step: int = 1
    reset: int | None = None
    key: str = ""

    def settings(self) -> dict[str, int | None]:
        return {"start": self.start, "step": self.step, "reset": self.reset}


def check_name(name: object) -> str:
    """Return *name* if it can name a sequence, else raise `SequenceConfigError` saying why."""
    if not isinstance(name, str):
        raise SequenceConfigError(f"a sequence name must be a string, not {type(name).__name__}")
    if not 1 <= len(name) <= NAME_MAX:
        raise SequenceConfigError(
            f"a sequence name must have 1 to {NAME_MAX} characters, not {len(name)}"
        )
    reason = unstorable(name)
    if reason:
        raise SequenceConfigError(f"a sequence name {reason}: {name!r}")
    return name


def unstorable(text: str) -> str | None:
    """Say why no database column can hold *text* as given (NUL, lone surrogates), or None."""
    if "\x00" in text:
        return "must not contain NUL"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode"
    return None


def check_integer(value: object, what: str) -> int:
    """Return *value* as an int if it is a 64-bit integer (booleans are not), else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SequenceConfigError(f"{what} must be an integer, not {value!r}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise SequenceConfigError(f"{what} must fit in 64 bits, not {value}")
    return int(value)


def define(name: object, start: object = 1, step: object = 1, reset: object = None) -> Definition:
    """Check a sequence's name and settings and return its `Definition`."""
    checked_name = check_name(name)
    first = check_integer(start, "start")
    increment = check_integer(step, "step")
    if increment == 0:
        raise SequenceConfigError("step must not be 0")
    if reset is None:
        return Definition(checked_name, first, increment)
    wrap = check_integer(reset, "reset")
    if (wrap - first) * increment <= 0:
        raise SequenceConfigError(
            f"reset={wrap} must lie beyond start={first} in the direction of step={increment}"
        )
    if abs(wrap - first) > INT64_MAX:
        raise SequenceConfigError(f"reset - start must fit in 64 bits, not {wrap - first}")
    return Definition(checked_name, first, increment, wrap)


def check_count(count: object, definition: Definition) -> int:
    """Return *count* if that many values can be taken at once, else raise `SequenceConfigError`.

    Without a reset, the counter moves by count * step, which must fit in 64 bits.
    """
    number = check_integer(count, "count")
    if number < 1:
        raise SequenceConfigError(f"count must be at least 1, not {number}")
    step = definition.step
    if definition.reset is None and abs(number * step) > INT64_MAX:
        raise SequenceConfigError(f"count * step must fit in 64 bits, not {number} * {step}")
    return number
