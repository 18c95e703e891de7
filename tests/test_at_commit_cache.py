"""Numbering at commit builds each statement once per shape (table, column, counter settings,
number of rows where the SQL depends on it) and binds the rest, so that a commit reuses the
statement object and SQLAlchemy its compiled form; different shapes never share one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.orm import Session

from mortar_seq import register_sequence, register_template

from .at_commit_workers import Base, Document, documents, lines
from .test_at_commit_templates import Base as TicketBase
from .test_at_commit_templates import tickets

Run = list[tuple[Any, CacheStats]]  # each statement object run, and how SQLAlchemy compiled it


@pytest.fixture
def rows(engine: Engine) -> Iterator[Engine]:
    Base.metadata.create_all(engine)
    TicketBase.metadata.create_all(engine)
    yield engine
    TicketBase.metadata.drop_all(engine)
    Base.metadata.drop_all(engine)


@contextmanager
def executed(engine: Engine) -> Iterator[Run]:
    """The statement objects *engine* runs while the block runs, with their cache status."""
    run: Run = []

    def record(*args: Any) -> None:
        run.append((args[1], args[-1].context.cache_hit))

    sa.event.listen(engine, "after_execute", record)
    try:
        yield run
    finally:
        sa.event.remove(engine, "after_execute", record)


def _numbers(engine: Engine, table: sa.Table = documents) -> list[Any]:
    with engine.connect() as connection:
        query = sa.select(table.c.number).order_by(*table.primary_key.columns)
        return list(connection.execute(query).scalars())


def _inserting(seq: Any, count: int = 1, table: sa.Table = documents, **row: Any) -> Any:
    """Work that inserts *count* rows of *table* numbered at commit from *seq*."""
    values = row or {"series": seq.name}

    def work(session: Session) -> None:
        for _ in range(count):
            seq.insert_at_commit(session, table, values, column="number")

    return work


def _numbering(engine: Engine, work: Callable[[Session], object]) -> Any:
    """Run *work* in a Session's transaction; return the statement that numbered its rows
    (the last one its commit ran)."""
    with Session(engine) as session:
        work(session)
        with executed(engine) as run:
            session.commit()
    return run[-1][0]


@pytest.mark.parametrize("kind", ["insert_at_commit", "at_commit"])
def test_each_commit_reuses_its_statements(rows: Engine, kind: str) -> None:
    with rows.begin() as connection:
        seq = register_sequence("doc", connection)

    def transaction() -> Run:
        with Session(rows) as session:
            if kind == "insert_at_commit":
                with executed(rows) as inserted:
                    seq.insert_at_commit(session, documents, {"series": "doc"}, column="number")
            else:
                document = Document(series="doc")
                session.add(document)
                seq.at_commit(session, document, "number")
                inserted = []  # by the ORM's flush, at commit
            with executed(rows) as committed:
                session.commit()
        return inserted + committed

    transaction()  # the first: statements built and compiled, the series' first use
    runs = [transaction() for _ in range(3)]
    assert _numbers(rows) == [1, 2, 3, 4]
    # The insert, then the numbering: one statement on PostgreSQL, else the counter's
    # UPDATE and the rows'.
    assert len(runs[0]) == (2 if rows.dialect.name == "postgresql" else 3), runs[0]
    ours = slice(0 if kind == "insert_at_commit" else 1, None)  # not the ORM's own INSERT
    for run in runs[1:]:
        assert all(a is b for (a, _), (b, _) in zip(run[ours], runs[0][ours], strict=True))
    for run in runs:
        assert [hit for _, hit in run] == [CacheStats.CACHE_HIT] * len(run), run


def test_same_shape_shares_a_statement_across_series(rows: Engine) -> None:
    """The series' name and key are bound: two series with the same settings, one statement."""
    with rows.begin() as connection:
        first = register_sequence("first", connection)
        second = register_sequence("second", connection)
    used = [_numbering(rows, _inserting(seq)) for seq in (first, second, first)]
    assert _numbers(rows) == [1, 1, 2]
    assert used[0] is used[1] is used[2]


def test_different_shapes_do_not_share_a_statement(rows: Engine) -> None:
    with rows.begin() as connection:
        plain = register_sequence("plain", connection)
        stepped = register_sequence("stepped", connection, start=100, step=5)
        cycling = register_sequence("cycling", connection, start=1, reset=4)  # 1, 2, 3, 1, ...
    used = {
        "plain": _numbering(rows, _inserting(plain)),
        "stepped": _numbering(rows, _inserting(stepped)),
        "cycling": _numbering(rows, _inserting(cycling, 2)),
        "cycling again": _numbering(rows, _inserting(cycling, 2)),
        "plain, two rows": _numbering(rows, _inserting(plain, 2)),
        "plain, three rows": _numbering(rows, _inserting(plain, 3)),
        "plain, lines": _numbering(rows, _inserting(plain, 1, lines, document=1, line=1)),
    }
    # Each series numbered as its settings say, whatever was numbered before it.
    assert _numbers(rows) == [1, 100, 1, 2, 3, 1, 2, 3, 4, 5, 6]
    assert _numbers(rows, lines) == [7]
    assert used["plain, lines"] is not used["plain"]  # another table
    assert used["cycling again"] is used["cycling"]
    assert used["plain, two rows"] is not used["plain"]
    if rows.dialect.name == "postgresql":
        # The numbers are computed in SQL, with the settings in it; one row's key is bound
        # as it is, several rows' keys travel as arrays, whatever their number.
        assert used["stepped"] is not used["plain"]
        assert used["cycling"] is not used["plain, two rows"]
        assert used["plain, three rows"] is used["plain, two rows"]
    else:
        # The numbers travel as parameters, one per row: a statement per number of rows.
        assert used["stepped"] is used["plain"]
        assert used["plain, two rows"] is used["cycling"]
        assert used["plain, three rows"] is not used["plain, two rows"]


def test_a_template_counter_gets_its_own_identifiers(rows: Engine) -> None:
    with rows.begin() as connection:
        tpl = register_template("TK", "{category}-{counter:03d}", connection)

    def inserting(category: str) -> Callable[[Session], object]:
        return lambda session: tpl.insert_at_commit(
            session, tickets, {"category": category}, column="ref"
        )

    used = [_numbering(rows, inserting(category)) for category in ("x", "y", "x", "y")]
    with rows.connect() as connection:
        query = sa.select(tickets.c.ref).order_by(tickets.c.id)
        assert list(connection.execute(query).scalars()) == ["x-001", "y-001", "x-002", "y-002"]
    assert used[2] is used[0]
    assert used[3] is used[1]
    if rows.dialect.name == "postgresql":
        assert used[0] is not used[1]  # the identifier is written in SQL, its text in it
