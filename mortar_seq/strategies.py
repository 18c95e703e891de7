"""How sequences are stored and advanced: the strategy protocol and its implementations."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import ColumnExpressionArgument

from .arithmetic import Advance, advance, handed_out
from .binding import SessionLike, dialect_of
from .definition import Definition
from .errors import SequenceConfigError, SequenceExhausted, UnknownSequence
from .model import Counter
from .storage import create_missing


class SequenceStrategy(Protocol):
    """How one kind of sequence is created, advanced, read and removed.

    The verbs take the caller's session and the sequence's `Definition`; they run in the
    caller's transaction and never commit or roll it back.
    """

    kind: ClassVar[str]  # stored with each sequence, so other processes find the strategy

    def create(self, session: SessionLike, definition: Definition, *, nowait: bool) -> None: ...

    def next(self, session: SessionLike, definition: Definition) -> int: ...

    def next_many(
        self, session: SessionLike, definition: Definition, count: int
    ) -> Sequence[int]: ...

    def last(self, session: SessionLike, definition: Definition) -> int | None: ...

    def delete(self, session: SessionLike, definition: Definition) -> None: ...


@dataclass(frozen=True)
class TableSequence:
    """A counter row per sequence: gapless, in any SQLAlchemy database.

    Values taken in a transaction that rolls back are given back, so the values stored by
    committed transactions form start, start + step, ... with no gap and no duplicate.
    Concurrent transactions on the same sequence are serialised on its row (on SQLite, on
    the database's write lock). A value is only safe if it is saved in the transaction
    that took it.
    """

    kind: ClassVar[str] = "table"

    def create(self, session: SessionLike, definition: Definition, *, nowait: bool) -> None:
        row = {"name": definition.name, "key": definition.key, "value": None}
        create_missing(session, Counter, row, nowait=nowait)

    def next(self, session: SessionLike, definition: Definition) -> int:
        return self.next_many(session, definition, 1)[0]

    def next_many(self, session: SessionLike, definition: Definition, count: int) -> Sequence[int]:
        where = _counter(definition)
        plan = advance(definition, count)
        bump = (
            sa.update(Counter)
            .where(where, _fits(plan, definition.step))
            .values(value=_advanced(plan, definition.step))
            .execution_options(synchronize_session=False)
        )
        last: int | None
        if dialect_of(session).update_returning:
            # One round trip: UPDATE ... RETURNING.
            last = session.execute(bump.returning(Counter.value)).scalar_one_or_none()
        elif cast("CursorResult[Any]", session.execute(bump)).rowcount:
            # No UPDATE ... RETURNING (MariaDB): the row is ours now, read what we wrote.
            last = session.execute(sa.select(Counter.value).where(where)).scalar_one()
        else:
            last = None
        if last is None:
            raise self._refusal(session, definition, count)
        return handed_out(definition, last, count)

    def last(self, session: SessionLike, definition: Definition) -> int | None:
        query = sa.select(Counter.value).where(_counter(definition))
        return session.execute(query).scalar_one_or_none()

    def delete(self, session: SessionLike, definition: Definition) -> None:
        """Nothing beyond the stored rows, which the registry deletes."""

    def _refusal(self, session: SessionLike, definition: Definition, count: int) -> Exception:
        # A locking read, like the UPDATE before it: it sees rows newer than a REPEATABLE
        # READ snapshot, such as a counter just created on a connection of its own.
        query = sa.select(sa.literal(1)).where(_counter(definition)).with_for_update(read=True)
        if session.execute(query).first() is None:
            return UnknownSequence(definition.name, " in this database")
        return SequenceExhausted(
            f"{definition.name!r} cannot hand out {count} more value(s) within 64 bits"
        )


ColumnExpression = ColumnElement[Any] | ColumnExpressionArgument[Any]


def _counter(definition: Definition) -> ColumnElement[bool]:
    return sa.and_(Counter.name == definition.name, Counter.key == definition.key)


def _number(value: int) -> ColumnElement[int]:
    return sa.literal(value, sa.BigInteger)


def _reached(value: ColumnExpression, bound: int, step: int) -> ColumnElement[bool]:
    """*value* is at *bound* or beyond it, in the direction of *step*."""
    return value >= _number(bound) if step > 0 else value <= _number(bound)


def _short_of(value: ColumnExpression, bound: int, step: int) -> ColumnElement[bool]:
    """*value* is at *bound* or before it, in the direction of *step*."""
    return value <= _number(bound) if step > 0 else value >= _number(bound)


def _advanced(plan: Advance, step: int) -> ColumnElement[Any]:
    value = Counter.value
    whens: list[tuple[ColumnElement[bool], ColumnElement[Any]]] = []
    if plan.from_nothing is not None:
        whens.append((value.is_(None), _number(plan.from_nothing)))
    if plan.wrap_at is not None:
        whens.append((_reached(value, plan.wrap_at, step), value + _number(plan.backward)))
    moved = value + _number(plan.forward)
    return sa.case(*whens, else_=moved) if whens else moved


def _fits(plan: Advance, step: int) -> ColumnElement[bool]:
    """The rows this call may move: any whose new value stays within 64 bits."""
    value = Counter.value
    allowed: list[ColumnElement[bool]] = [value.is_(None)] if plan.from_nothing is not None else []
    if plan.limit is None:
        allowed.append(value.is_not(None))
    else:
        allowed.append(_short_of(value, plan.limit, step))
    return sa.or_(*allowed)


_STRATEGIES: dict[str, type[Any]] = {TableSequence.kind: TableSequence}


def strategy_for(impl: object) -> SequenceStrategy:
    """Return the strategy *impl* names: None (the default), a strategy class or an instance."""
    if impl is None:
        return TableSequence()
    if isinstance(impl, type) and impl in _STRATEGIES.values():
        return cast(SequenceStrategy, impl())
    if type(impl) in _STRATEGIES.values():
        return cast(SequenceStrategy, impl)
    known = ", ".join(cls.__name__ for cls in _STRATEGIES.values())
    raise SequenceConfigError(f"impl must be one of {known} (a class or an instance), not {impl!r}")


def stored_strategy(kind: str, options: dict[str, Any]) -> SequenceStrategy:
    """Rebuild the strategy stored as *kind* with *options*."""
    cls = _STRATEGIES.get(kind)
    if cls is None:
        raise SequenceConfigError(f"this version of mortar_seq does not know the {kind!r} kind")
    return cast(SequenceStrategy, cls(**options))


def strategy_options(strategy: SequenceStrategy) -> dict[str, Any]:
    """Return the options stored with a strategy (its dataclass fields)."""
    return dataclasses.asdict(cast(Any, strategy))
