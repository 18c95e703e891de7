"""Numbering at commit, second slice: templates (a series per counter key) and column defaults
that leave the row NULL at flush and number it just before COMMIT."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import transaction
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from zope.sqlalchemy import register as join_zope

from mortar_seq import (
    SequenceConfigError,
    SequenceError,
    TemplateError,
    column_default,
    number_pending,
    register_sequence,
    register_template,
)
from mortar_seq.patterns.pattern import identifier

from .conftest import Caller, counting
from .databases import Database
from .test_async import ASYNC_DRIVERS, run


class Base(DeclarativeBase):
    pass


class Ticket(Base):
    __tablename__ = "test_ticket"

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(sa.String(40), default="misc")
    ref: Mapped[str | None] = mapped_column(sa.String(80))


class Filed(Base):
    """Numbered at commit by a column default resolved by name, at the first flush."""

    __tablename__ = "test_filed"

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(sa.String(40))
    ref: Mapped[str | None] = mapped_column(
        sa.String(80), default=column_default("TK", at_commit=True)
    )


tickets = Base.metadata.tables["test_ticket"]
filed = Base.metadata.tables["test_filed"]
PATTERN = "{category}-{counter:03d}"


@pytest.fixture
def rows(engine: Engine) -> Iterator[Engine]:
    Base.metadata.create_all(engine)
    yield engine
    Base.metadata.drop_all(engine)


def _refs(engine: Engine, table: sa.Table = tickets) -> list[str | None]:
    with engine.connect() as connection:
        query = sa.select(table.c.ref).order_by(table.c.id)
        return list(connection.execute(query).scalars())


def _template(engine: Engine, name: str = "TK", pattern: str = PATTERN, **options: Any) -> Any:
    with engine.begin() as connection:
        return register_template(name, pattern, connection, **options)


def test_numbered_in_registration_order_per_key(rows: Engine, caller: Caller) -> None:
    tpl = _template(rows)
    with caller.block() as session:
        for category in ("b", "a", "b", "a", "b"):
            tpl.insert_at_commit(session, tickets, {"category": category}, column="ref")
        # An explicit keyword wins over the row's value; a column's scalar default counts.
        tpl.insert_at_commit(session, tickets, {"category": "a"}, column="ref", category="c")
        tpl.insert_at_commit(session, tickets, {}, column="ref")
        inside = session.execute(sa.select(tickets.c.ref)).scalars().all()
        assert inside == [None] * 7
        if caller.kind == "connection" or caller.mode == "outer":
            texts = ["b-001", "a-001", "b-002", "a-002", "b-003", "c-001", "misc-001"]
            assert number_pending(session) == {"TK": texts}  # in registration order
            assert number_pending(session) == {}
            stored = session.execute(sa.select(tickets.c.ref).order_by(tickets.c.id))
            assert stored.scalars().all() == texts
    if caller.mode == "commit":
        assert _refs(rows) == ["b-001", "a-001", "b-002", "a-002", "b-003", "c-001", "misc-001"]


@pytest.mark.parametrize("expire", [True, False], ids=["expire", "keep"])
def test_orm_object_carries_its_identifier(rows: Engine, expire: bool) -> None:
    tpl = _template(rows)
    with Session(rows, expire_on_commit=expire) as session:
        made = [Ticket(category="x"), Ticket(category="y"), Ticket(category="x")]
        session.add_all(made)
        for ticket in made:
            tpl.at_commit(session, ticket, "ref")  # keywords read from the object
        other = Ticket(category="x")
        session.add(other)
        tpl.at_commit(session, other, "ref", category="z")
        session.commit()
        assert [ticket.ref for ticket in made] == ["x-001", "y-001", "x-002"]
        assert other.ref == "z-001"


def test_ambiguous_text_refused_at_commit(rows: Engine) -> None:
    """'{month}{counter}' writes '111' for month 1 at 11 and month 11 at 1: the commit fails
    and nothing is stored unnumbered."""
    tpl = _template(rows, "M", "{month}{counter}")
    with Session(rows) as session, session.begin():
        tpl.restart(session, 11, month="1")
    for kind in ("session", "connection"):
        opened: Session | sa.Connection = Session(rows) if kind == "session" else rows.connect()
        with opened as session:
            tpl.insert_at_commit(session, tickets, {"category": "m"}, column="ref", month="1")
            with pytest.raises(TemplateError, match="will not issue '111'"):
                session.commit() if isinstance(session, Session) else number_pending(session)
            with pytest.raises(SequenceError):
                session.commit()
            session.rollback()
        assert _refs(rows) == []
    with rows.connect() as connection:
        assert tpl.last(connection, month="1") == "110"


def test_parent_checked_at_registration(rows: Engine) -> None:
    _template(rows, "PL", "PL{counter}")
    child = _template(rows, "TR", "{PL}/{counter}")
    with Session(rows) as session:
        with pytest.raises(TemplateError, match="not an identifier issued by template 'PL'"):
            child.insert_at_commit(session, tickets, {}, column="ref", PL="PL7")
        assert session.execute(sa.select(tickets.c.id)).all() == []  # nothing inserted


def test_savepoint_rolled_back(rows: Engine, caller: Caller) -> None:
    tpl = _template(rows)
    with caller.block() as session:
        tpl.insert_at_commit(session, tickets, {"category": "a"}, column="ref")
        savepoint = session.begin_nested()
        tpl.insert_at_commit(session, tickets, {"category": "a"}, column="ref")
        tpl.insert_at_commit(session, tickets, {"category": "b"}, column="ref")
        savepoint.rollback()
        tpl.insert_at_commit(session, tickets, {"category": "a"}, column="ref")
        if caller.kind == "connection" or caller.mode == "outer":
            assert number_pending(session) == {"TK": ["a-001", "a-002"]}
    if caller.mode == "commit":
        assert _refs(rows) == ["a-001", "a-002"]
        with rows.connect() as connection:
            assert tpl.last(connection, category="b") is None


@pytest.mark.parametrize("database", ["postgresql", "mariadb"], indirect=True)
def test_gapless_per_key_across_two_connections(rows: Engine) -> None:
    """Two threads hold open transactions with rows of both keys at once (no lock held
    before COMMIT), then commit one after the other: each key is gapless, in commit order."""
    tpl = _template(rows)
    written = threading.Barrier(2)
    failures: list[BaseException] = []

    def work(which: str) -> None:
        try:
            with Session(rows) as session, session.begin():
                for category in ("a", "b", "a"):
                    ticket = Ticket(category=category)
                    session.add(ticket)
                    tpl.at_commit(session, ticket, "ref")
                tpl.insert_at_commit(session, tickets, {"category": "b"}, column="ref")
                session.flush()
                written.wait(30)  # both transactions are open with their rows written
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    refs = _refs(rows)
    assert sorted(ref for ref in refs if ref and ref[0] == "a") == [
        f"a-00{n}" for n in (1, 2, 3, 4)
    ]
    assert sorted(ref for ref in refs if ref and ref[0] == "b") == [
        f"b-00{n}" for n in (1, 2, 3, 4)
    ]


@pytest.mark.parametrize("count", [1, 300])
def test_statements_per_counter_key(rows: Engine, count: int) -> None:
    tpl = _template(rows)
    with rows.begin() as connection:
        for category in ("a", "b"):  # both counters exist: nothing to create at commit
            tpl.restart(connection, 1, category=category)
    with rows.begin() as connection:
        for _ in range(count):
            for category in ("a", "b"):
                tpl.insert_at_commit(connection, tickets, {"category": category}, column="ref")
        with counting(rows) as sent:
            numbered = number_pending(connection)
    expected = [f"{category}-{n:03d}" for category in ("a", "b") for n in range(1, count + 1)]
    assert sorted(numbered["TK"]) == expected
    per_key = 1 if rows.dialect.name == "postgresql" else 2
    assert len(sent) == 2 * per_key, sent
    assert sorted(_refs(rows)) == expected  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("pattern", "start", "step"),
    [
        ("{counter}", -2, 1),
        ("N{counter:04d}.", -1002, 1001),
        ("{counter:02d}", 98, 1),
        ("{counter:x}", 14, 1),
        ("ACC-{counter:06d}{check:luhn}", 41, 1),
    ],
)
def test_identifiers_written_as_rendered(rows: Engine, pattern: str, start: int, step: int) -> None:
    """Where the database renders the identifier itself (PostgreSQL), it writes what
    Python's format does, signs and widths overflowed included."""
    tpl = _template(rows, pattern=pattern, start=start, step=step)
    with rows.begin() as connection:
        tpl.restart(connection, start)  # the counter exists: nothing to create at commit
    with rows.begin() as connection:
        for _ in range(4):
            tpl.insert_at_commit(connection, tickets, {}, column="ref")
        with counting(rows) as sent:
            numbered = number_pending(connection)
    in_sql = rows.dialect.name == "postgresql" and not any(s in pattern for s in (":x", "check"))
    assert len(sent) == (1 if in_sql else 2), sent
    key = tpl.parsed.key({})
    expected = [identifier(key, start + step * n) for n in range(4)]
    assert numbered == {"TK": expected}
    assert _refs(rows) == expected


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_snapshot_isolation_refused_on_postgresql(rows: Engine) -> None:
    tpl = _template(rows)
    snapshot = rows.execution_options(isolation_level="REPEATABLE READ")
    with Session(snapshot) as session, pytest.raises(SequenceConfigError, match="READ COMMITTED"):
        tpl.insert_at_commit(session, tickets, {"category": "a"}, column="ref")
    with Session(snapshot) as session:
        session.add(Filed(category="a"))
        with pytest.raises(SequenceConfigError, match="READ COMMITTED"):
            session.flush()  # refused by the column default, before the row is written
    assert _refs(rows, filed) == []


# Column defaults numbering at commit.


def test_column_default_by_name_at_flush(rows: Engine) -> None:
    tpl = _template(rows)
    with Session(rows, expire_on_commit=False) as session:
        made = [Filed(category="a"), Filed(category="b"), Filed(category="a")]
        session.add_all(made)
        session.flush()
        assert [each.ref for each in made] == [None, None, None]  # NULL until COMMIT
        later = Filed(category="a")
        session.add(later)  # flushed by the commit itself
        session.commit()
        assert [each.ref for each in made] == ["a-001", "b-001", "a-002"]
        assert later.ref == "a-003"
    with Session(rows) as session:
        session.add(Filed(category="a"))
        session.flush()
        session.rollback()  # takes nothing
    with Session(rows) as session:
        session.add(Filed(category="c"))
        session.commit()
    assert _refs(rows, filed) == ["a-001", "b-001", "a-002", "a-003", "c-001"]
    with rows.connect() as connection:
        assert tpl.last(connection, category="a") == "a-003"


def test_zope_transaction_numbers_defaults(rows: Engine) -> None:
    _template(rows)
    session = Session(rows)
    join_zope(session)
    with transaction.manager:
        session.add(Filed(category="z"))  # the transaction's only write, flushed by zope
    with transaction.manager:
        session.add(Filed(category="z"))
        session.flush()
    session.close()
    assert _refs(rows, filed) == ["z-001", "z-002"]


@pytest.mark.parametrize("database", list(ASYNC_DRIVERS), indirect=True)
def test_async_session_numbers_defaults_at_commit(database: Database, rows: Engine) -> None:
    tpl = _template(rows)

    async def scenario(async_engine: AsyncEngine) -> None:
        async with AsyncSession(async_engine, expire_on_commit=False) as session:
            made = Filed(category="a")
            session.add(made)
            await session.run_sync(tpl.insert_at_commit, filed, {"category": "a"}, column="ref")
            await session.commit()
            assert made.ref == "a-001"

    run(database, scenario)
    assert _refs(rows, filed) == ["a-001", "a-002"]  # the insert autoflushed the object first


def _defaulted(engine: Engine, default: Callable[[Any], object], kind: Any) -> sa.Table:
    metadata = sa.MetaData()
    table = sa.Table(
        "test_defaulted",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("category", sa.String(40)),
        sa.Column("number", kind, default=default),
    )
    metadata.create_all(engine)
    return table


@pytest.fixture
def cleanup(rows: Engine) -> Iterator[list[sa.Table]]:
    made: list[sa.Table] = []
    yield made
    for table in made:
        table.drop(rows)


def test_sequence_default_at_commit(
    rows: Engine, cleanup: list[sa.Table], caller: Caller
) -> None:  # cleanup after the caller ends its transaction
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)
    table = _defaulted(rows, seq.default_at_commit, sa.BigInteger)
    cleanup.append(table)
    with caller.block() as session:
        for category in ("a", "b", "c"):
            session.execute(table.insert().values(category=category))
        assert session.execute(sa.select(table.c.number)).scalars().all() == [None] * 3
        if caller.kind == "connection":
            assert number_pending(session) == {"doc": [1, 2, 3]}
        elif caller.mode == "outer":
            session.flush()
            assert number_pending(session) == {"doc": [1, 2, 3]}
    if caller.mode == "commit":
        with rows.connect() as connection:
            stored = connection.execute(sa.select(table.c.number).order_by(table.c.id))
            assert stored.scalars().all() == [1, 2, 3]


def test_template_default_at_commit(rows: Engine, cleanup: list[sa.Table]) -> None:
    tpl = _template(rows)
    table = _defaulted(rows, tpl.default_at_commit(category="t"), sa.String(80))
    cleanup.append(table)
    with rows.begin() as connection:
        connection.execute(table.insert().values(category="a"))
        connection.execute(table.insert().values(category="b"))
        assert number_pending(connection) == {"TK": ["t-001", "t-002"]}
    with rows.connect() as connection:
        query = sa.select(table.c.number).order_by(table.c.id)
        assert connection.execute(query).scalars().all() == ["t-001", "t-002"]


def test_default_many_rows_in_one_statement(rows: Engine, cleanup: list[sa.Table]) -> None:
    """An executemany: numbered in row order where the database reports each row's key,
    else refused before anything is written."""
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)
    table = _defaulted(rows, seq.default_at_commit, sa.BigInteger)
    cleanup.append(table)
    with rows.begin() as connection:
        listed = [{"category": c} for c in "abc"]
        connection.execute(table.insert().return_defaults(), listed)
        assert number_pending(connection) == {"doc": [1, 2, 3]}
    with rows.connect() as connection:
        with pytest.raises(SequenceConfigError, match="return_defaults"):
            connection.execute(table.insert(), [{"category": c} for c in "de"])
        connection.rollback()
        # Refused before anything is written.
        with pytest.raises(SequenceConfigError, match="several VALUES rows"):
            connection.execute(table.insert().values([{"category": c} for c in "fg"]))
        with pytest.raises(SequenceConfigError, match="RETURNING"):
            connection.execute(table.insert().returning(table.c.id), {"category": "h"})
        assert number_pending(connection) == {}
        connection.commit()
        query = sa.select(table.c.number).order_by(table.c.id)
        assert connection.execute(query).scalars().all() == [1, 2, 3]


def test_default_not_null_refused(rows: Engine, cleanup: list[sa.Table]) -> None:
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)
    metadata = sa.MetaData()
    table = sa.Table(
        "test_defaulted",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.BigInteger, nullable=False, default=seq.default_at_commit),
    )
    metadata.create_all(rows)
    cleanup.append(table)
    with rows.connect() as connection:
        with pytest.raises(SequenceConfigError, match="NOT NULL"):
            connection.execute(table.insert())
        connection.rollback()


def test_default_keywords_for_a_sequence_refused(rows: Engine) -> None:
    with pytest.raises(TypeError):
        column_default("doc", at_commit="yes")  # type: ignore[arg-type]
