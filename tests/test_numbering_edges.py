"""Numbering rows as a demanding user writes them: mapped classes the ORM writes specially,
sessions bound to several databases, pending objects, and column defaults misused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
import transaction
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    column_property,
    mapped_column,
)
from zope.sqlalchemy import register as join_zope

from mortar_seq import (
    SequenceConfigError,
    TemplateError,
    UnknownSequence,
    column_default,
    create_tables,
    register_sequence,
    register_template,
)
from mortar_seq.model import Counter


class Base(DeclarativeBase):
    pass


class Document(Base):
    """Single-table inheritance, a version counter and an SQL-expression attribute."""

    __tablename__ = "test_edges_document"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    number: Mapped[int | None] = mapped_column(sa.BigInteger)
    title: Mapped[str | None] = mapped_column(sa.String(40))
    version: Mapped[int] = mapped_column()
    shouted = column_property(sa.func.upper(title))

    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_on": kind,
        "polymorphic_identity": "document",
        "version_id_col": version,
    }


class Note(Document):
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "note"}


class Letter(Document):
    """Joined-table inheritance: its rows span two tables."""

    __tablename__ = "test_edges_letter"

    id: Mapped[int] = mapped_column(sa.ForeignKey(Document.id), primary_key=True)
    recipient: Mapped[str | None] = mapped_column(sa.String(40))

    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "letter"}


class Customer(Base):
    __tablename__ = "test_edges_customer"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)


class Receipt(Base):
    __tablename__ = "test_edges_receipt"

    id: Mapped[int] = mapped_column(
        sa.Integer, sa.Sequence("edges_id", optional=True), primary_key=True
    )
    number: Mapped[int | None] = mapped_column(sa.BigInteger)
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey(Customer.id))


SHARED = column_default("edges-shared")


class Stamped(Base):
    """Numbered at flush: two columns from one default object, a template from the row."""

    __tablename__ = "test_edges_stamped"

    id: Mapped[int] = mapped_column(primary_key=True)
    first: Mapped[int] = mapped_column(sa.BigInteger, default=SHARED)
    second: Mapped[int] = mapped_column(sa.BigInteger, default=SHARED)
    code: Mapped[str | None] = mapped_column(sa.String(40), default=column_default("edges-code"))
    company: Mapped[str] = mapped_column(sa.String(20), default="ACME")  # after code
    year: Mapped[int | None] = mapped_column()


class Unknown(Base):
    __tablename__ = "test_edges_unknown"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(sa.BigInteger, default=column_default("edges-nowhere"))
    extra: Mapped[int | None] = mapped_column(
        sa.BigInteger, default=column_default("edges-shared", company="ACME")
    )


@pytest.fixture
def rows(engine: Engine) -> Iterator[Engine]:
    Base.metadata.create_all(engine)
    try:
        yield engine
    finally:
        Base.metadata.drop_all(engine)


def _all(engine: Engine, query: Any) -> list[Any]:
    with Session(engine) as session:
        return list(session.execute(query).all())


def test_single_table_subclass_gets_its_identity_and_version(rows: Engine) -> None:
    with rows.begin() as connection:
        seq = register_sequence("edges", connection)
    with Session(rows) as session, session.begin():
        assert seq.insert(session, Note, {"title": "a"}, column="number") == 1
        assert seq.insert_many(
            session, Note, [{"title": "b"}, {"title": None}], column="number"
        ) == range(2, 4)
        assert seq.insert(session, Document, {"title": "c"}, column="number") == 4
    notes = _all(rows, sa.select(Note.number, Note.kind, Note.version).order_by(Note.number))
    assert notes == [(1, "note", 1), (2, "note", 1), (3, "note", 1)]
    with Session(rows) as session, session.begin():
        note = session.scalars(sa.select(Note).where(Note.number == 1)).one()
        note.title = "changed"  # the ORM's version check needs the first version stored
    assert _all(rows, sa.select(Document.version).where(Document.number == 1)) == [(2,)]


def test_what_insert_cannot_write_is_refused(rows: Engine) -> None:
    with rows.begin() as connection:
        seq = register_sequence("edges", connection)
        with pytest.raises(TypeError, match="several tables"):
            seq.insert(connection, Letter, {"recipient": "x"}, column="number")
        with pytest.raises(TypeError, match="'shouted' is not a column"):
            seq.insert(connection, Document, {"shouted": "X"}, column="number")
        with pytest.raises(TypeError, match="keyed by column names"):
            seq.insert(connection, Document, {Document.title: "x"}, column="number")
        with pytest.raises(TypeError, match="list of mappings"):
            seq.insert_many(connection, Document, None, column="number")  # type: ignore[arg-type]
    assert _all(rows, sa.select(Document.id)) == []
    with rows.connect() as connection:
        assert seq.last(connection) is None


def test_pending_objects_are_flushed_first(rows: Engine) -> None:
    with rows.begin() as connection:
        seq = register_sequence("edges", connection)
    with Session(rows) as session, session.begin():
        session.add(Customer(id=1))
        seq.insert(session, Receipt, {"customer_id": 1}, column="number")
        assert not session.new
        session.add(Customer(id=2))
        seq.insert_many(session, Receipt, [{"customer_id": 2}], column="number")
        assert not session.new
        session.add(Customer(id=3))
        seq.next(session)
        assert not session.new
    assert _all(rows, sa.select(Receipt.number, Receipt.customer_id).order_by(Receipt.id)) == [
        (1, 1),
        (2, 2),
    ]


def test_rows_bound_elsewhere_take_the_counters_number(rows: Engine, tmp_path: Path) -> None:
    """A Session whose counters and rows live in two databases takes the number where the
    counters are, and inserts the row where its table is."""
    elsewhere = sa.create_engine(f"sqlite:///{tmp_path / 'elsewhere.sqlite'}")
    create_tables(elsewhere)  # with no counter: a number taken there would be refused
    Base.metadata.create_all(elsewhere)
    table = Receipt.__table__
    with rows.begin() as connection:
        seq = register_sequence("edges", connection, start=100)
    binds = {Counter: rows, Receipt: elsewhere, table: elsewhere}
    with Session(binds=binds) as session, session.begin():
        assert seq.insert(session, Receipt, {}, column="number") == 100
        assert seq.insert(session, table, {}, column="number") == 101
        assert seq.insert_many(session, table, [{}, {}], column="number") == range(102, 104)
    stored = _all(elsewhere, sa.select(Receipt.number).order_by(Receipt.id))
    assert stored == [(100,), (101,), (102,), (103,)]
    assert _all(rows, sa.select(Receipt.number)) == []
    assert _all(elsewhere, sa.select(Counter.name)) == []
    elsewhere.dispose()


def test_optional_sequence_defaults_are_left_to_the_server(rows: Engine) -> None:
    with rows.begin() as connection:
        seq = register_sequence("edges", connection)
    with rows.begin() as connection:
        assert seq.insert(connection, Receipt, {}, column="number") == 1
        assert seq.insert_many(connection, Receipt, [{}, {}], column="number") == range(2, 4)
    assert len({row[0] for row in _all(rows, sa.select(Receipt.id))}) == 3


def test_flush_defaults(rows: Engine) -> None:
    with rows.begin() as connection:
        register_sequence("edges-shared", connection)
        register_template("edges-code", "{company}/{year}/{counter}", connection)
    with Session(rows) as session, session.begin():
        session.add_all([Stamped(year=2026) for _ in range(3)])
    stamped = _all(
        rows, sa.select(Stamped.first, Stamped.second, Stamped.code).order_by(Stamped.id)
    )
    numbers = sorted(n for first, second, _ in stamped for n in (first, second))
    assert numbers == [1, 2, 3, 4, 5, 6]  # one default object on two columns
    assert [code for *_, code in stamped] == ["ACME/2026/1", "ACME/2026/2", "ACME/2026/3"]
    with Session(rows) as session:
        session.add(Stamped())  # no year: never the text 'None'
        with pytest.raises(TemplateError, match=r"needs the keyword 'year' \(it is None\)"):
            session.flush()


def test_flush_default_errors_are_the_librarys(rows: Engine) -> None:
    with rows.begin() as connection:
        register_sequence("edges-shared", connection)
        register_template("edges-code", "{company}/{year}/{counter}", connection)
    with Session(rows) as session:
        session.add(Unknown(extra=1))
        with pytest.raises(UnknownSequence, match="edges-nowhere"):
            session.flush()
        session.rollback()
        session.add(Unknown(number=1))
        with pytest.raises(SequenceConfigError, match="only templates take keywords"):
            session.flush()
        session.rollback()


@pytest.mark.parametrize("column", ["first", "code"])
def test_insert_from_select_is_refused(rows: Engine, column: str) -> None:
    """SQLAlchemy runs a column default once for all the rows of an INSERT ... FROM SELECT:
    they would all get the same number."""
    with rows.begin() as connection:
        register_sequence("edges-shared", connection)
        register_template("edges-code", "{company}/{year}/{counter}", connection)
        connection.execute(sa.insert(Customer), [{"id": 1}, {"id": 2}])
    stamped = Stamped.__table__
    given = {"first": 7, "second": 8, "code": "c"}
    del given[column]
    source = sa.select(
        *[sa.literal(value).label(name) for name, value in given.items()],
        Customer.id.label("year"),
    )
    with rows.connect() as connection:
        with pytest.raises(SequenceConfigError, match=r"INSERT \.\.\. FROM SELECT"):
            connection.execute(stamped.insert().from_select([*given, "year"], source))
        connection.rollback()
    assert _all(rows, sa.select(Stamped.id)) == []


partitions = sa.MetaData()
parted = sa.Table(
    "test_edges_parted",
    partitions,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.BigInteger),
    sa.Column("title", sa.String(10)),
)
partition = sa.Table(
    "test_edges_partition",
    partitions,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.BigInteger),
    sa.Column("title", sa.String(10)),
)
# The classic partitioning trigger: the row goes to a child table, none to the parent.
REDIRECT = {
    "postgresql": [
        """CREATE FUNCTION test_edges_redirect() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO test_edges_partition (number, title) VALUES (NEW.number, NEW.title);
            RETURN NULL;
        END $$""",
        """CREATE TRIGGER test_edges_redirect BEFORE INSERT ON test_edges_parted
        FOR EACH ROW EXECUTE FUNCTION test_edges_redirect()""",
    ],
    "sqlite": [
        """CREATE TRIGGER test_edges_redirect BEFORE INSERT ON test_edges_parted BEGIN
            INSERT INTO test_edges_partition (number, title) VALUES (NEW.number, NEW.title);
            SELECT RAISE(IGNORE);
        END""",
    ],
}


@pytest.fixture
def redirected(engine: Engine) -> Iterator[Engine]:
    partitions.create_all(engine)
    try:
        with engine.begin() as connection:
            for statement in REDIRECT[engine.dialect.name]:
                connection.exec_driver_sql(statement)
        yield engine
    finally:
        partitions.drop_all(engine)  # the trigger with its table
        if engine.dialect.name == "postgresql":
            with engine.begin() as connection:
                connection.exec_driver_sql("DROP FUNCTION IF EXISTS test_edges_redirect()")


# MariaDB's triggers cannot drop a row (only fail the statement).
@pytest.mark.parametrize("database", ["sqlite", "postgresql"], indirect=True)
def test_a_row_a_trigger_redirects_keeps_its_number(redirected: Engine) -> None:
    with redirected.begin() as connection:
        seq = register_sequence("edges", connection)
        assert seq.insert(connection, parted, {"title": "a"}, column="number") == 1
        assert seq.insert(connection, parted, {"title": "b"}, column="number") == 2
        many = [{"title": "c"}, {"title": "d"}]
        assert seq.insert_many(connection, parted, many, column="number") == range(3, 5)
    session = Session(redirected)
    join_zope(session)  # ORM hooks, which must see the write
    with transaction.manager:
        assert seq.insert(session, parted, {"title": "e"}, column="number") == 5
    session.close()
    stored = _all(redirected, sa.select(partition.c.number, partition.c.title))
    assert sorted(stored) == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]
    assert _all(redirected, sa.select(parted.c.id)) == []
    with redirected.connect() as connection:
        assert seq.last(connection) == 5
