"""The `SequenceStrategy` protocol: the stable interface every implementation follows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, cast

from sqlalchemy.engine import Dialect

from ..db.binding import SessionLike
from ..definition import Definition
from ..errors import SequenceConfigError

# What `register_implementation` requires of a class, and what it may leave out.
REQUIRED_VERBS = ("check", "create", "next", "next_many", "last", "delete")
OPTIONAL_VERBS = ("reached", "restart", "insert", "insert_many")


class SequenceStrategy(Protocol):
    """How one kind of sequence is created, advanced, read and removed: the plug-in interface.

    This protocol is stable: `TableSequence`, `NativeSequence` and `PooledSequence` follow
    it, and so may any class made known with `register_implementation`. An implementation
    is a frozen dataclass whose fields are its options (stored with each sequence, as
    JSON, so that other processes rebuild it), with a class attribute *kind*: the short,
    unique name stored with each sequence.

    Every verb takes the caller's session (a `~sqlalchemy.orm.Session` or a
    `~sqlalchemy.engine.Connection`) and the sequence's `Definition` (``name``, ``start``,
    ``step``, ``reset``, and ``key``: a template's rendering, ``""`` for a plain sequence).
    Verbs run in the caller's transaction and never commit, roll back or begin it; a verb
    that must write apart (DDL where it is not transactional, a reserved block) uses a
    connection of its own from the session's engine, never a new engine. Database errors
    propagate unwrapped.

    Required verbs: `check`, `create`, `next`, `next_many`, `last`, `delete`.

    Optional verbs, and what the library does without them:

    - ``reached(session, definition) -> int | None``: the furthest value taken or
      reserved by anyone (None before the first). Needed by ``restart_after``, the
      imports, parent templates (``issued``), ``mortar-seq last`` and ``list``; without
      it those raise `SequenceConfigError` naming the kind and the missing verb.
    - ``restart(session, definition, value) -> None``: make *value* (a value of the
      series, checked by the caller) the next one handed out, under the sequence's lock
      as `next` takes it; raise `SequenceConfigError` where that could hand out a value
      twice. Without it ``restart``, ``restart_after``, template restarts and the
      imports raise `SequenceConfigError` naming the kind and the missing verb.
    - ``insert(session, definition, into, row) -> int`` and ``insert_many(session,
      definition, into, rows) -> Sequence[int]``: a faster way to number rows as they
      are written. Without them ``seq.insert`` takes `next` (``insert_many``:
      `next_many`) and then inserts, in the same transaction.

    Capabilities, class attributes the library reads instead of testing classes (both
    False when left out):

    - ``counts_in_rows: ClassVar[bool]``: the values are bounded by the sequence's row in
      the library's counter table (``mortar_seq_counters``, whose ``value`` is the last
      value taken or reserved). Administration verbs and imports then lock that row first,
      as `next` does, before reading where the sequence stands.
    - ``gapless: ClassVar[bool]``: for a sequence that never resets, `next_many` hands out
      ``count`` contiguous values in one short statement, so the command line takes any
      count at once instead of in chunks.

    .. versionchanged:: 0.1
       Stable plug-in interface; ``reached``, ``restart``, ``insert`` and ``insert_many``
       optional; `check` is given the definition too.
    """

    kind: ClassVar[str]  # stored with each sequence, so other processes find the strategy

    def check(self, dialect: Dialect, definition: Definition) -> None:
        """Raise `SequenceConfigError` if *dialect*'s database cannot hold this kind with
        *definition*'s settings.

        Called once per registration (a template's with its start and step, key ``""``),
        before anything is written.
        """

    def create(self, session: SessionLike, definition: Definition, *, nowait: bool) -> None:
        """Create what the sequence needs (a row, a database object) where it is missing.

        Race-free: several processes may create the same sequence at once. With
        *nowait*, raise `SequenceLocked` rather than wait for another transaction.
        """

    def next(self, session: SessionLike, definition: Definition) -> int:
        """Take the next value in the caller's transaction and return it.

        Never the same value twice for the same definition (as far as the kind promises:
        a gapless kind gives a rolled-back value back). `UnknownSequence` if its objects
        are missing; `SequenceExhausted` where a value would leave 64 bits.
        """

    def next_many(self, session: SessionLike, definition: Definition, count: int) -> Sequence[int]:
        """Take *count* (at least 1, checked by the caller) values at once, in order."""

    def last(self, session: SessionLike, definition: Definition) -> int | None:
        """Return the last value handed out as *session* sees it; None before the first."""

    def delete(self, session: SessionLike, definition: Definition) -> None:
        """Remove what `create` made beyond the stored rows (which the registry deletes)."""


class Reaching(Protocol):
    """A strategy with the optional `reached` verb."""

    kind: ClassVar[str]

    def reached(self, session: SessionLike, definition: Definition) -> int | None: ...


class Restartable(Protocol):
    """A strategy with the optional `restart` verb."""

    kind: ClassVar[str]

    def restart(self, session: SessionLike, definition: Definition, value: int) -> None: ...


def reaching(strategy: SequenceStrategy, needed_by: str) -> Reaching:
    """Return *strategy* as one with `reached`, or raise `SequenceConfigError` naming it."""
    _require(strategy, "reached", needed_by)
    return cast(Reaching, strategy)


def restartable(strategy: SequenceStrategy, needed_by: str) -> Restartable:
    """Return *strategy* as one with `restart`, or raise `SequenceConfigError` naming it."""
    _require(strategy, "restart", needed_by)
    return cast(Restartable, strategy)


def counts_in_rows(strategy: object) -> bool:
    """Tell whether *strategy*'s values are bounded by its row in the counter table."""
    return getattr(strategy, "counts_in_rows", False) is True


def gapless(strategy: object) -> bool:
    """Tell whether *strategy* hands out any count of contiguous values in one statement."""
    return getattr(strategy, "gapless", False) is True


def _require(strategy: object, verb: str, needed_by: str) -> None:
    if not callable(getattr(strategy, verb, None)):
        cls: Any = type(strategy)
        raise SequenceConfigError(
            f"the {getattr(cls, 'kind', '?')!r} implementation "
            f"({cls.__module__}.{cls.__qualname__}) has no {verb}() verb, which "
            f"{needed_by} needs"
        )
