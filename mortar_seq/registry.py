"""The registry: sequence names mapped to their implementations, in this process and stored."""

from __future__ import annotations

import threading
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Engine

from .binding import SessionLike, dialect_of, engine_of
from .definition import Definition, check_name, define
from .errors import SequenceConfigError, UnknownSequence
from .model import StoredSequence
from .sequence import Sequence
from .storage import create_missing, delete, load
from .strategies import stored_strategy, strategy_for, strategy_options


class Registry:
    """Names mapped to sequences: registered in this process, and stored by each database."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registered: dict[str, Sequence] = {}
        self._stored: WeakKeyDictionary[Engine, dict[str, Sequence]] = WeakKeyDictionary()

    def register(
        self,
        name: str,
        session: SessionLike,
        impl: object = None,
        *,
        start: int = 1,
        step: int = 1,
        reset: int | None = None,
    ) -> Sequence:
        """Create the sequence where missing, record it here, return it: `register_sequence`."""
        wanted = Sequence(define(name, start, step, reset), strategy_for(impl))
        wanted.strategy.check(dialect_of(session))
        with self._lock:
            current = self._registered.get(wanted.name)
        if current is not None:
            _refuse_conflict(current, wanted, "registered")
        _refuse_conflict(self.stored(session, wanted.name, create=wanted), wanted, "stored")
        with self._lock:
            current = self._registered.setdefault(wanted.name, wanted)
        _refuse_conflict(current, wanted, "registered")
        return wanted

    def get(self, name: str, session: SessionLike | None = None) -> Sequence:
        """Return the sequence registered here as *name*, else, given a session, the stored one."""
        check_name(name)
        with self._lock:
            found = self._registered.get(name)
        if found is not None:
            return found
        if session is None:
            raise UnknownSequence(name, " registered in this process")
        stored = self.stored(session, name)
        with self._lock:
            return self._registered.setdefault(name, stored)

    def stored(
        self,
        session: SessionLike,
        name: str,
        *,
        create: Sequence | None = None,
        repair: bool = False,
        nowait: bool = False,
    ) -> Sequence:
        """Return the sequence *name* as the database of *session* stores it.

        With *create*, a missing sequence is created as *create* says, race-free; *repair*
        also recreates its counter. What a database stores is remembered per engine, so
        that steady use costs no lookup.
        """
        check_name(name)
        engine = engine_of(session)
        with self._lock:
            known = self._stored.get(engine, {}).get(name)
        if known is not None and not repair:
            return known
        row = load(session, name)
        if row is None and create is not None:
            # The strategy's objects (counter row, SEQUENCE) first: whoever sees the stored
            # row may use them at once, even where each is created in a transaction of its own.
            create.strategy.create(session, create.definition, nowait=nowait)
            create_missing(session, StoredSequence, _stored_row(create), nowait=nowait)
            row = load(session, name)
        if row is None:
            raise UnknownSequence(name)
        found = Sequence(
            Definition(name, row.start, row.step, row.reset), stored_strategy(row.impl, row.options)
        )
        if create is not None and repair:
            found.strategy.create(session, found.definition, nowait=nowait)
        with self._lock:
            self._stored.setdefault(engine, {})[name] = found
        return found

    def forget(self, session: SessionLike, name: str) -> None:
        """Forget what the database of *session* stores about *name*; the next use looks again."""
        with self._lock:
            self._stored.get(engine_of(session), {}).pop(name, None)

    def delete(self, session: SessionLike, name: str) -> bool:
        """Delete *name* in the caller's transaction and forget it; tell whether it existed."""
        check_name(name)
        row = load(session, name)
        if row is not None:
            strategy = stored_strategy(row.impl, row.options)
            strategy.delete(session, Definition(name, row.start, row.step, row.reset))
        existed = delete(session, name)
        with self._lock:
            self._registered.pop(name, None)
        self.forget(session, name)
        return existed


def _stored_row(sequence: Sequence) -> dict[str, Any]:
    return {
        "name": sequence.name,
        "impl": sequence.strategy.kind,
        "options": strategy_options(sequence.strategy),
        **sequence.definition.settings(),
    }


def _described(sequence: Sequence) -> dict[str, Any]:
    return {
        "impl": type(sequence.strategy).__name__,
        **strategy_options(sequence.strategy),
        **sequence.definition.settings(),
    }


def _refuse_conflict(have: Sequence, want: Sequence, where: str) -> None:
    had, wanted = _described(have), _described(want)
    differ = [key for key in wanted if had.get(key) != wanted[key]]
    if differ:
        was = ", ".join(f"{key}={had.get(key)!r}" for key in differ)
        got = ", ".join(f"{key}={wanted[key]!r}" for key in differ)
        raise SequenceConfigError(f"{want.name!r} is already {where} with {was}; got {got}")


registry = Registry()


def register_sequence(
    name: str,
    session: SessionLike,
    impl: object = None,
    *,
    start: int = 1,
    step: int = 1,
    reset: int | None = None,
) -> Sequence:
    """Create sequence *name* where missing and register it in this process; return it.

    Run it at setup. The default *impl* is the gapless `TableSequence`. Its row is created
    in the caller's transaction on PostgreSQL and SQLite, and in a short transaction of its
    own on MariaDB (InnoDB gap locks make the in-transaction insert deadlock-prone).
    Registering again with the same parameters does nothing; with others it raises
    `SequenceConfigError`. *start* is the first value, *step* a non-zero increment, and
    *reset* the value at which the sequence starts again at *start*.
    """
    return registry.register(name, session, impl, start=start, step=step, reset=reset)


def get_sequence(name: str, session: SessionLike | None = None) -> Sequence:
    """Return the sequence registered as *name*, or with *session* one stored by another process.

    An unknown name raises `UnknownSequence`.
    """
    return registry.get(name, session)
