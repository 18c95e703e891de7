"""The one-call forms, as in django-sequences: the first call for a name creates it."""

from __future__ import annotations

import collections.abc as abc

from . import registry as registry_module
from .db.binding import SESSIONS, SessionLike, check_session
from .db.locking import waiting_at_most
from .definition import check_count, define
from .errors import SequenceConfigError, UnknownSequence
from .sequence import Sequence, no_wait
from .strategies import TableSequence


def get_next_value(
    session: SessionLike,
    sequence_name: str = "default",
    initial_value: int = 1,
    reset_value: int | None = None,
    *,
    nowait: bool = False,
) -> int:
    """Return the next value of *sequence_name*, creating the sequence on first use.

    Runs in the caller's transaction; save the value there. A new sequence is a gapless
    `TableSequence` starting at *initial_value* and, with *reset_value*, starting again
    when it would reach it. Both are stored: later calls need not repeat them, and
    *initial_value* is ignored once the sequence exists (as in django-sequences), while a
    *reset_value* that differs from the stored one raises `SequenceConfigError`.
    """
    if not isinstance(session, SESSIONS):
        check_session(session, "get_next_value", sequence_name, initial_value, reset_value)
    return _take(session, sequence_name, 1, initial_value, reset_value, nowait)[0]


def get_next_values(
    session: SessionLike,
    count: int,
    sequence_name: str = "default",
    initial_value: int = 1,
    *,
    nowait: bool = False,
) -> abc.Sequence[int]:
    """Return the next *count* values of *sequence_name*, a range where contiguous.

    As `get_next_value`, in one statement however many values are taken.
    """
    if not isinstance(session, SESSIONS):
        # django-sequences' order, get_next_values(count, name), with a session put in
        check_session(session, "get_next_values", count, sequence_name, initial_value)
    return _take(session, sequence_name, count, initial_value, None, nowait)


def get_last_value(session: SessionLike, sequence_name: str = "default") -> int | None:
    """Return the last value of *sequence_name* visible to *session*, or None.

    None also where no such sequence exists, as in django-sequences.
    """
    check_session(session, "get_last_value", sequence_name)
    try:
        sequence = registry_module.registry.stored(session, sequence_name)
    except UnknownSequence:
        return None
    return sequence.last(session)


def delete_sequence(session: SessionLike, name: str) -> bool:
    """Delete sequence *name* in the caller's transaction; return whether it existed."""
    check_session(session, "delete_sequence", name)
    return registry_module.registry.delete(session, name)


def _take(
    session: SessionLike,
    name: str,
    count: int,
    initial_value: int,
    reset_value: int | None,
    nowait: bool,
) -> abc.Sequence[int]:
    wanted = Sequence(define(name, initial_value, 1, reset_value), TableSequence())
    registry = registry_module.registry

    def take(repair: bool) -> abc.Sequence[int]:
        sequence = registry.stored(
            session, wanted.name, create=wanted, repair=repair, nowait=nowait
        )
        if reset_value is not None and sequence.definition.reset != reset_value:
            raise SequenceConfigError(
                f"{wanted.name!r} is stored with reset={sequence.definition.reset!r}; "
                f"got reset_value={reset_value!r}"
            )
        number = check_count(count, sequence.definition)
        return sequence.strategy.next_many(session, sequence.definition, number)

    with waiting_at_most(session, no_wait(nowait), wanted.name):
        try:
            return take(repair=False)
        except UnknownSequence:
            # Its rows went away since this process last used it: a rollback of the
            # transaction that created them, or delete_sequence elsewhere.
            registry.forget(session, wanted.name)
        return take(repair=True)
