"""The errors mortar_seq raises itself; database faults pass through untouched."""

from __future__ import annotations

from sqlalchemy.exc import DontWrapMixin


class SequenceError(DontWrapMixin, Exception):
    """Base of every error raised by mortar_seq itself (bad input, configuration, contention).

    Raised inside a flush (by a column default), it reaches the caller as itself, not
    wrapped in SQLAlchemy's ``StatementError``.
    """


class UnknownSequence(SequenceError, LookupError):
    """No sequence of that name is registered or stored."""

    def __init__(self, name: str, why: str = "") -> None:
        super().__init__(f"no sequence named {name!r}{why}")
        self.name = name


class SequenceConfigError(SequenceError, ValueError):
    """A bad name, setting or count, an unsupported implementation, or a conflicting one."""


class SequenceLocked(SequenceError):
    """With ``nowait=True``, another transaction holds the sequence; ``__cause__`` says how."""


class SequenceExhausted(SequenceError, OverflowError):
    """The next value would leave the signed 64-bit range."""


class TemplateError(SequenceError, ValueError):
    """A bad template pattern, a missing keyword, or a parent value the parent never issued."""


class AuditError(SequenceError, ValueError):
    """An audited column holds a value that is not an integer (SQLite stores any value)."""
