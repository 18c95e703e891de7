"""A database per tenant: a definition is only applied where the database stores it alike."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mortar_seq import (
    PooledSequence,
    SequenceConfigError,
    UnknownSequence,
    column_default,
    get_sequence,
    get_template,
    register_sequence,
    register_template,
)
from mortar_seq.model import Counter, StoredSequence

from .conftest import fresh_registry


@contextmanager
def elsewhere(engine: Engine) -> Iterator[sa.Connection]:
    """A transaction of another process on *engine*'s database: its own engine and registry."""
    other = sa.create_engine(engine.url)
    try:
        with fresh_registry(), other.begin() as connection:
            yield connection
    finally:
        other.dispose()


def _counters(engine: Engine, name: str) -> list[tuple[str, int | None]]:
    """The counters of *name* as committed: (key, last value taken)."""
    with engine.connect() as connection:
        query = sa.select(Counter.key, Counter.value).where(Counter.name == name)
        return sorted((key, value) for key, value in connection.execute(query))


def _where(engine: Engine) -> str:
    return re.escape(f"database {engine.url.render_as_string()} stores")


def test_sequence_stored_otherwise_is_refused(tenants: tuple[Engine, Engine]) -> None:
    one, two = tenants
    with elsewhere(two) as connection:  # the other tenant's own set-up
        register_sequence("invoice", connection)
    with one.begin() as connection:
        invoice = register_sequence("invoice", connection, start=1000)
    said = (
        r"'invoice' is registered in this process with start=1000, but "
        + _where(two)
        + r" start=1\b"
    )
    for _ in range(2):  # refused every time, not only the first
        with Session(two) as session, session.begin():
            with pytest.raises(SequenceConfigError, match=said):
                invoice.next(session)
            with pytest.raises(SequenceConfigError, match=said):
                invoice.next_many(session, 3)
            with pytest.raises(SequenceConfigError, match=said):
                get_sequence("invoice", session)
    assert _counters(two, "invoice") == [("", None)]  # untouched
    with one.begin() as connection:
        assert invoice.next(connection) == 1000


def test_sequence_stored_alike_is_used(tenants: tuple[Engine, Engine]) -> None:
    one, two = tenants
    with elsewhere(two) as connection:
        register_sequence("invoice", connection, start=1000)
    with one.begin() as connection:
        invoice = register_sequence("invoice", connection, start=1000)
    with two.begin() as connection:
        assert get_sequence("invoice", connection) is invoice
        assert [invoice.next(connection), invoice.next(connection)] == [1000, 1001]
    with one.begin() as connection:
        assert invoice.next(connection) == 1000


def test_sequence_missing_there(tenants: tuple[Engine, Engine]) -> None:
    """A held object never creates its definition in another database; registering does."""
    one, two = tenants
    with one.begin() as connection:
        invoice = register_sequence("invoice", connection, start=1000)
    with two.begin() as connection, pytest.raises(UnknownSequence, match="in this database"):
        invoice.next(connection)
    assert _counters(two, "invoice") == []
    with two.begin() as connection:
        assert register_sequence("invoice", connection, start=1000) == invoice
        assert invoice.next(connection) == 1000


def test_implementation_stored_otherwise_is_refused(tenants: tuple[Engine, Engine]) -> None:
    one, two = tenants
    with elsewhere(two) as connection:
        register_sequence("invoice", connection)
    with one.begin() as connection:
        invoice = register_sequence("invoice", connection, PooledSequence(block=10))
    said = r"with impl='PooledSequence', block=10, but .* stores impl='TableSequence'"
    with two.begin() as connection, pytest.raises(SequenceConfigError, match=said):
        invoice.next(connection)
    assert _counters(two, "invoice") == [("", None)]


def test_sequence_found_in_one_database_is_refused_in_another(
    tenants: tuple[Engine, Engine],
) -> None:
    one, two = tenants
    for engine, start in [(one, 1), (two, 5000)]:
        with elsewhere(engine) as connection:
            register_sequence("invoice", connection, start=start)
    with one.begin() as connection:
        found = get_sequence("invoice", connection)  # nothing registered in this process
        assert found.next(connection) == 1
    said = (
        re.escape(f"'invoice' is stored in database {one.url.render_as_string()} with start=1")
        + ", but "
        + _where(two)
        + " start=5000"
    )
    with two.begin() as connection:
        with pytest.raises(SequenceConfigError, match=said):
            found.next(connection)
        assert get_sequence("invoice", connection).next(connection) == 5000  # its own


def test_column_default_refuses_what_the_database_stores_otherwise(
    tenants: tuple[Engine, Engine],
) -> None:
    one, two = tenants
    documents = sa.Table(
        "documents",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.BigInteger, default=column_default("invoice")),
    )
    for engine in tenants:
        documents.create(engine)
    with elsewhere(two) as connection:
        register_sequence("invoice", connection)
    with one.begin() as connection:
        register_sequence("invoice", connection, start=1000)
        connection.execute(documents.insert().values(id=1))
        assert connection.execute(sa.select(documents.c.number)).scalar_one() == 1000
    with two.begin() as connection, pytest.raises(SequenceConfigError, match="start=1000"):
        connection.execute(documents.insert().values(id=1))
    assert _counters(two, "invoice") == [("", None)]


def test_template_stored_otherwise_is_refused(tenants: tuple[Engine, Engine]) -> None:
    one, two = tenants
    with elsewhere(two) as connection:
        register_template("INV", "INV-{counter}", connection)
    with one.begin() as connection:
        invoices = register_template("INV", "INV-{counter}", connection, start=1000)
    said = (
        r"'INV' is registered in this process with start=1000, but " + _where(two) + r" start=1\b"
    )
    for _ in range(2):
        with two.begin() as connection:
            with pytest.raises(SequenceConfigError, match=said):
                invoices.next(connection)
            with pytest.raises(SequenceConfigError, match=said):
                invoices.last(connection)
            with pytest.raises(SequenceConfigError, match=said):
                get_template("INV", connection)
    assert _counters(two, "INV") == []  # no counter made with the wrong settings
    with one.begin() as connection:
        assert invoices.next(connection) == "INV-1000"


def test_template_pattern_stored_otherwise_is_refused(tenants: tuple[Engine, Engine]) -> None:
    one, two = tenants
    with elsewhere(two) as connection:
        register_template("INV", "B/{counter:05d}", connection)
    with one.begin() as connection:
        invoices = register_template("INV", "A-{counter}", connection)
    said = r"with pattern='A-\{counter\}', but .* stores pattern='B/\{counter:05d\}'"
    with two.begin() as connection, pytest.raises(SequenceConfigError, match=said):
        invoices.next(connection)
    assert _counters(two, "INV") == []


def test_template_stored_alike_is_used(tenants: tuple[Engine, Engine]) -> None:
    one, two = tenants
    for engine in tenants:
        with elsewhere(engine) as connection:
            register_template("PL", "{year}: Playlist {counter}", connection, start=7)
    with one.begin() as connection:
        playlists = register_template("PL", "{year}: Playlist {counter}", connection, start=7)
        files = register_template("AF", "{PL} > File {counter}", connection)
        first = playlists.next(connection, year=2015)
    with two.begin() as connection:
        assert get_template("PL", connection) is playlists
        assert playlists.next_many(connection, 2, year=2015) == [first, "2015: Playlist 8"]
        with pytest.raises(UnknownSequence, match="'AF' in this database"):
            files.next(connection, PL=first)  # registered on one only
        rows = connection.execute(sa.select(StoredSequence.name).order_by(StoredSequence.name))
        assert rows.scalars().all() == ["PL"]


def test_parent_stored_otherwise_is_refused(tenants: tuple[Engine, Engine]) -> None:
    one, two = tenants
    with elsewhere(two) as connection:
        register_template("PL", "{year}: Playlist {counter}", connection, step=2)
        register_template("AF", "{PL} > File {counter}", connection)
        first = get_template("PL", connection).next(connection, year=2015)
    with one.begin() as connection:
        register_template("PL", "{year}: Playlist {counter}", connection)
        files = register_template("AF", "{PL} > File {counter}", connection)
    with two.begin() as connection, pytest.raises(SequenceConfigError, match=r"'PL' .* step=1"):
        files.next(connection, PL=first)
    assert _counters(two, "AF") == []
