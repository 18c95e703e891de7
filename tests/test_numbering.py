"""Numbering rows as they are written: insert, insert_many, column defaults."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
import transaction
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from zope.sqlalchemy import register as join_zope

from mortar_seq import (
    NativeSequence,
    PooledSequence,
    SequenceExhausted,
    TableSequence,
    UnknownSequence,
    column_default,
    delete_sequence,
    get_sequence,
    register_sequence,
    register_template,
)
from mortar_seq.db.dialects import modifies_in_cte
from mortar_seq.strategies import table as strategies_module

from .conftest import Caller, counting, fresh_registry


class Base(DeclarativeBase):
    pass


class Invoice(Base):
    __tablename__ = "test_numbered_invoice"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int | None] = mapped_column(sa.BigInteger)
    code: Mapped[str | None] = mapped_column(sa.String(40))
    company: Mapped[str] = mapped_column(sa.String(20), default="ACME")
    year: Mapped[int] = mapped_column(default=2026)


class Numbered(Base):
    """Numbered at flush by name, and identified by a template from its own values."""

    __tablename__ = "test_numbered_at_flush"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(sa.BigInteger, default=column_default("invoice"))
    code: Mapped[str] = mapped_column(sa.String(40), default=column_default("INV"))
    company: Mapped[str] = mapped_column(sa.String(20))


invoices = Invoice.__table__
at_flush = Numbered.__table__


@pytest.fixture
def rows(engine: Engine) -> Engine:
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            connection.execute(table.delete())
    return engine


def _stored(engine: Engine, table: Any = invoices, column: str = "number") -> list[Any]:
    with engine.connect() as connection:
        query = sa.select(table.c[column]).order_by(table.c.id)
        return list(connection.execute(query).scalars())


def test_insert_and_insert_many(rows: Engine, caller: Caller) -> None:
    with caller.block() as session:
        seq = register_sequence("invoice", session, start=100)
    with caller.block() as session:
        assert seq.insert(session, Invoice, {"company": "A"}, column="number") == 100
        assert seq.insert(session, invoices, {"company": "B"}, column="number") == 101
        many = [{"company": f"C{i}"} for i in range(5)]
        assert seq.insert_many(session, invoices, many, column="number") == range(102, 107)
        assert seq.insert_many(session, Invoice, [], column="number") == range(0)
        query = sa.select(invoices.c.company, invoices.c.number).order_by(invoices.c.id)
        assert session.execute(query).all() == [
            ("A", 100),
            ("B", 101),
            *[(f"C{i}", 102 + i) for i in range(5)],
        ]


@pytest.mark.parametrize("kind", ["session", "connection"])
def test_statements(rows: Engine, kind: str) -> None:
    with rows.begin() as connection:
        seq = register_sequence("invoice", connection)
        pooled = register_sequence("pooled", connection, PooledSequence)
        seq.next(connection)
        pooled.next(connection)
    in_cte = modifies_in_cte(rows.dialect)
    with Session(rows) as orm, rows.connect() as core:
        session: Session | sa.Connection = orm if kind == "session" else core
        session.execute(sa.select(1))
        with counting(rows) as sent:
            seq.insert(session, Invoice, {"company": "A"}, column="number")
        assert len(sent) == (1 if in_cte else 2), sent
        with counting(rows) as sent:
            seq.insert_many(session, Invoice, [{"company": "A"}] * 50, column="number")
        assert len(sent) == (1 if in_cte else 2), sent
        with counting(rows) as sent:
            pooled.insert(session, Invoice, {"company": "A"}, column="number")
        # From memory, or (SQLite, whose write lock the caller holds) the missing values.
        assert len(sent) <= 2, sent
        with counting(rows) as sent:
            pooled.insert_many(session, Invoice, [{"company": "A"}] * 50, column="number")
        assert len(sent) <= 2, sent
        session.rollback()


@pytest.mark.parametrize("database", ["postgresql", "mariadb"], indirect=True)
def test_native_insert_is_one_statement(rows: Engine) -> None:
    with rows.begin() as connection:
        native = register_sequence("native", connection, NativeSequence)
    with rows.begin() as connection, counting(rows) as sent:
        first = native.insert(connection, invoices, {"company": "A"}, column="number")
        assert native.insert(connection, Invoice, {}, column="number") > first
        assert len(sent) == 2, sent  # nextval inside each INSERT
        numbers = native.insert_many(connection, invoices, [{}] * 3, column="number")
    assert _stored(rows) == [first, first + 1, *numbers]


def test_rollback_gives_numbers_back(rows: Engine) -> None:
    with rows.begin() as connection:
        seq = register_sequence("invoice", connection)
        register_template("INV", "{company}-{counter}", connection)
    for _ in range(2):
        with Session(rows) as session:
            assert seq.insert(session, Invoice, {}, column="number") == 1
            assert seq.insert_many(session, Invoice, [{}] * 3, column="number") == range(2, 5)
            session.add(Numbered(company="X"))
            session.flush()
            session.rollback()
    assert _stored(rows) == []


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"start": 0, "reset": 5}, [0, 1, 2, 3, 4, 0, 1]),
        ({"start": -1, "step": -2, "reset": -8}, [-1, -3, -5, -7, -1, -3, -5]),
        ({"start": 2, "step": -1}, [2, 1, 0, -1, -2, -3, -4]),
    ],
)
def test_insert_many_follows_the_series(
    rows: Engine, settings: dict[str, int], expected: list[int]
) -> None:
    with rows.begin() as connection:
        seq = register_sequence("series", connection, **settings)
    with rows.begin() as connection:
        assert (
            list(seq.insert_many(connection, invoices, [{}] * 3, column="number")) == expected[:3]
        )
        assert (
            list(seq.insert_many(connection, invoices, [{}] * 4, column="number")) == expected[3:]
        )
    assert _stored(rows) == expected


def test_refusals_insert_nothing(rows: Engine) -> None:
    with rows.begin() as connection:
        last = register_sequence("last", connection, start=2**63 - 2)
        gone = register_sequence("gone", connection)
        delete_sequence(connection, "gone")
    with rows.begin() as connection:
        assert last.insert(connection, invoices, {}, column="number") == 2**63 - 2
        with pytest.raises(SequenceExhausted):
            last.insert_many(connection, invoices, [{}] * 2, column="number")
        with pytest.raises(UnknownSequence):
            gone.insert(connection, invoices, {}, column="number")
        with pytest.raises(UnknownSequence):
            gone.insert_many(connection, invoices, [{}] * 2, column="number")
        assert last.insert(connection, invoices, {}, column="number") == 2**63 - 1
    assert _stored(rows) == [2**63 - 2, 2**63 - 1]


def test_misuse_says_what_to_pass(rows: Engine) -> None:
    with rows.begin() as connection:
        seq = register_sequence("invoice", connection)
        with pytest.raises(TypeError, match="no column 'nope'"):
            seq.insert(connection, invoices, {}, column="nope")
        with pytest.raises(TypeError, match="receives the number"):
            seq.insert(connection, invoices, {"number": 3}, column="number")
        with pytest.raises(TypeError, match="Table or a mapped class"):
            seq.insert(connection, "test_numbered_invoice", {}, column="number")
        with pytest.raises(TypeError, match=r"Table or a mapped class, not \{\}"):
            seq.insert(connection, {}, {}, column="number")  # unhashable: not a cache's error
        with pytest.raises(TypeError, match="same columns"):
            seq.insert_many(connection, invoices, [{"company": "A"}, {}], column="number")


def test_template_insert_reads_the_row(rows: Engine, caller: Caller) -> None:
    with caller.block() as session:
        template = register_template("T", "{company}/{year}/{counter:03d}", session)
    with caller.block() as session:
        assert template.insert(session, Invoice, {"company": "A", "year": 2025}, column="code") == (
            "A/2025/001"
        )
        assert template.insert(session, invoices, {"company": "A"}, column="code", year=2024) == (
            "A/2024/001"
        )
        values = {"company": "A", "year": 2025}
        assert template.insert(session, invoices, values, column="code", company="B") == (
            "B/2025/001"
        )
        query = sa.select(invoices.c.code).order_by(invoices.c.id)
        assert list(session.execute(query).scalars()) == ["A/2025/001", "A/2024/001", "B/2025/001"]


def test_template_insert_reads_scalar_defaults_as_a_default_does(
    rows: Engine, caller: Caller
) -> None:
    # Before: tpl.insert ignored the columns' scalar defaults ("needs the keyword 'company'")
    # while tpl.default() read them, as docs/usage.rst says both do.
    with caller.block() as session:
        template = register_template("T", "{company}/{year}/{counter:03d}", session)
    with caller.block() as session:
        assert template.insert(session, Invoice, {}, column="code") == "ACME/2026/001"
        assert template.insert(session, invoices, {"year": 2025}, column="code") == "ACME/2025/001"
        query = sa.select(invoices.c.company, invoices.c.year).order_by(invoices.c.id)
        assert [tuple(row) for row in session.execute(query)] == [("ACME", 2026), ("ACME", 2025)]


def test_orm_defaults(rows: Engine) -> None:
    with rows.begin() as connection:
        seq = register_sequence("invoice", connection)
        template = register_template("INV", "{company}-{counter}", connection)

    class ByObject(Base):
        __tablename__ = "test_numbered_by_object"
        id: Mapped[int] = mapped_column(primary_key=True)
        number: Mapped[int] = mapped_column(sa.BigInteger, default=seq.default)
        code: Mapped[str] = mapped_column(sa.String(40), default=template.default(company="Z"))

    try:
        ByObject.__table__.create(rows)
        with Session(rows) as session, session.begin():
            session.add(Numbered(company="A"))
            session.flush()
            with counting(rows) as sent:
                session.add_all([Numbered(company="A") for _ in range(20)])
                session.flush()
            # One counter call for the sequence's twenty numbers, one per template rendering.
            assert sum("mortar_seq_counter" in statement for statement in sent) == 21
            session.add(ByObject())
        assert _stored(rows, at_flush) == list(range(1, 22))
        assert _stored(rows, at_flush, "code") == [f"A-{i}" for i in range(1, 22)]
        assert _stored(rows, ByObject.__table__) == [22]
        assert _stored(rows, ByObject.__table__, "code") == ["Z-1"]
    finally:
        ByObject.__table__.drop(rows)
        Base.metadata.remove(ByObject.__table__)


def test_column_default_finds_what_the_database_stores(rows: Engine) -> None:
    with rows.begin() as connection:
        register_sequence("invoice", connection, start=7)
        register_template("INV", "{company}-{counter}", connection)
    with fresh_registry(), Session(rows) as session, session.begin():
        session.add(Numbered(company="A"))  # another process: nothing registered here
    assert _stored(rows, at_flush) == [7]
    assert _stored(rows, at_flush, "code") == ["A-1"]


def test_column_default_numbers_each_database_as_it_stores(
    tenants: tuple[Engine, Engine],
) -> None:
    one, two = tenants
    for engine, impl, start in [(one, PooledSequence, 1), (two, TableSequence, 5000)]:
        Base.metadata.create_all(engine)
        with fresh_registry(), engine.begin() as connection:  # each database's own set-up
            register_sequence("invoice", connection, impl, start=start)
            register_template("INV", "{company}-{counter}", connection, start=start)
    used = []
    for engine in (one, two, one):
        with Session(engine) as session, session.begin():
            session.add(Numbered(company="A"))
            session.flush()
            used.append(type(get_sequence("invoice", session).strategy))
    assert (_stored(one, at_flush), _stored(one, at_flush, "code")) == ([1, 2], ["A-1", "A-2"])
    assert (_stored(two, at_flush), _stored(two, at_flush, "code")) == ([5000], ["A-5000"])
    assert used == [PooledSequence, TableSequence, PooledSequence]


def test_zope_transaction_commits_numbered_rows(rows: Engine) -> None:
    with rows.begin() as connection:
        seq = register_sequence("invoice", connection)
        pooled = register_sequence("pooled", connection, PooledSequence)
        template = register_template("INV", "{company}-{counter}", connection)
    session = Session(rows)
    join_zope(session)
    with transaction.manager:  # each block's only write is the numbered row
        seq.insert(session, invoices, {}, column="number")
    with transaction.manager:
        seq.insert_many(session, invoices, [{}] * 2, column="number")
    with transaction.manager:
        pooled.insert(session, invoices, {}, column="number")
    with transaction.manager:
        pooled.insert_many(session, invoices, [{}] * 2, column="number")
    with transaction.manager:
        template.insert(session, invoices, {"company": "Z"}, column="code")
    with transaction.manager:
        session.add(Numbered(company="A"))
    session.close()
    assert _stored(rows)[:3] == [1, 2, 3]
    assert len(_stored(rows)) == 7
    assert _stored(rows, at_flush) == [4]


def test_statements_are_cached_per_shape(rows: Engine) -> None:
    with rows.begin() as connection:
        template = register_template("many", "{k}-{counter}", connection)
        template.next(connection, k=0)
        template.next(connection, k=0)
        cached = strategies_module._bump.cache_info().currsize
        for k in range(1, 200):
            template.next(connection, k=k)
            template.next(connection, k=k)
        assert strategies_module._bump.cache_info().currsize == cached


@pytest.mark.parametrize(
    ("settings", "count", "expected"),
    [
        ({"start": -(2**63)}, 3, [-(2**63), -(2**63) + 1, -(2**63) + 2]),
        ({"start": -(2**63) + 2, "step": -1}, 3, [-(2**63) + 2, -(2**63) + 1, -(2**63)]),
        ({"start": 1, "step": -1}, 4, [1, 0, -1, -2]),
        ({"start": -2, "step": 1}, 4, [-2, -1, 0, 1]),
        ({"start": 2**63 - 3}, 3, [2**63 - 3, 2**63 - 2, 2**63 - 1]),
        ({"start": -1, "step": -1, "reset": -4}, 5, [-1, -2, -3, -1, -2]),
        ({"start": 2**63 - 3, "reset": 2**63 - 1}, 3, [2**63 - 3, 2**63 - 2, 2**63 - 3]),
        (
            {"start": -(2**63) + 2, "step": -1, "reset": -(2**63)},
            3,
            [-(2**63) + 2, -(2**63) + 1, -(2**63) + 2],
        ),
    ],
)
def test_64_bit_edges(
    rows: Engine, settings: dict[str, int], count: int, expected: list[int]
) -> None:
    with rows.begin() as connection:
        seq = register_sequence("edge", connection, **settings)
    with rows.begin() as connection:
        assert [seq.next(connection) for _ in range(count)] == expected
        assert seq.last(connection) == expected[-1]
    if "reset" not in settings and abs(expected[-1]) >= 2**63 - 1:
        with rows.begin() as connection, pytest.raises(SequenceExhausted):
            seq.next(connection)


class Lowered(sa.TypeDecorator[str]):
    """Bound through SQL: the database lowers the text."""

    impl = sa.String(20)
    cache_ok = True

    def bind_expression(self, bindvalue: Any) -> Any:
        return sa.func.lower(bindvalue)


class Color(enum.Enum):
    red = "red"
    blue = "blue"


def _typed_columns(dialect: str) -> list[sa.Column[Any]]:
    columns: list[sa.Column[Any]] = [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("number", sa.BigInteger),
        sa.Column("amount", sa.Numeric(12, 2)),
        sa.Column("ratio", sa.Double),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("day", sa.Date),
        sa.Column("flag", sa.Boolean),
        sa.Column("blob", sa.LargeBinary),
        sa.Column("color", sa.Enum(Color, name="test_numbered_color")),
        sa.Column("doc", sa.JSON),
        sa.Column("uid", sa.Uuid),
        sa.Column("span", sa.Interval),
        sa.Column("code", Lowered),
    ]
    if dialect == "postgresql":
        columns += [sa.Column("tags", ARRAY(sa.String)), sa.Column("binary_doc", JSONB)]
    return columns


def _typed_rows(dialect: str) -> list[dict[str, Any]]:
    rows = []
    for i in range(3):
        row = {
            "amount": decimal.Decimal(f"{i}.25"),
            "ratio": i / 4,
            "at": dt.datetime(2026, 1, i + 1, 12, tzinfo=dt.UTC),
            "day": dt.date(2026, 1, i + 1),
            "flag": bool(i % 2),
            "blob": bytes([i, 0, 255]),
            "color": Color.blue,
            "doc": {"only": i},  # one key each: a 2-D array of keys if taken apart
            "uid": uuid.UUID(int=i + 1),
            "span": dt.timedelta(hours=i),
            "code": f"ABC{i}",
        }
        if dialect == "postgresql":
            row["tags"] = [f"t{i}", "x"]
            row["binary_doc"] = [i, [i]]
        rows.append(row)
    return rows


@pytest.mark.parametrize("types", ["arrays", "all"])
def test_insert_many_keeps_every_column_type(engine: Engine, types: str) -> None:
    """Many rows in one statement pass each column as an array: values that are lists or
    dicts stay whole, types bound through SQL keep it, and the rest take two statements."""
    dialect = engine.dialect.name
    table = sa.Table("test_numbered_types", sa.MetaData(), *_typed_columns(dialect))
    rows = _typed_rows(dialect)
    if types == "arrays":  # types that travel as arrays: one statement on PostgreSQL
        rows = [{k: v for k, v in row.items() if k not in {"code", "tags"}} for row in rows]
    table.create(engine)
    try:
        with engine.begin() as connection:
            seq = register_sequence("typed", connection)
        with engine.begin() as connection, counting(engine) as sent:
            numbers = seq.insert_many(connection, table, rows, column="number")
            if types == "arrays" and modifies_in_cte(engine.dialect):
                assert len(sent) == 1, sent
            one = seq.insert(connection, table, rows[0], column="number")
        with engine.connect() as connection:
            stored = connection.execute(sa.select(table).order_by(table.c.id)).mappings().all()
        assert [row["number"] for row in stored] == [*numbers, one] == [1, 2, 3, 4]
        for got, sent_row in zip(stored, [*rows, rows[0]], strict=True):
            expected = dict(sent_row)
            if "code" in expected:
                expected["code"] = expected["code"].lower()
            if got["at"].tzinfo is None:  # MariaDB and SQLite keep no zone
                expected["at"] = expected["at"].replace(tzinfo=None)
            assert {key: got[key] for key in expected} == expected
    finally:
        table.drop(engine)
        if dialect == "postgresql":
            with engine.begin() as connection:
                connection.execute(sa.text("DROP TYPE IF EXISTS test_numbered_color"))
