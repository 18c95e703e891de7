"""Deleting: held objects never issue again, and a name deleted and used again in one
transaction behaves alike on every database (as django-sequences users reset sequences)."""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mortar_seq import (
    PooledSequence,
    UnknownSequence,
    delete_sequence,
    get_last_value,
    get_next_value,
    get_sequence,
    get_template,
    register_sequence,
    register_template,
)
from mortar_seq.db.side import side_engine
from mortar_seq.model import Counter, StoredSequence

from .conftest import counting, fresh_registry


def counting_apart(engine: Engine) -> AbstractContextManager[list[str]]:
    """Collect the statements sent on the library's own connections only."""
    side = side_engine(engine)
    assert side is not engine
    return counting(side)


def _rows(engine: Engine, name: str) -> tuple[int, int]:
    """How many stored definitions and counters *name* has, committed."""
    with engine.connect() as connection:
        stored = sa.select(sa.func.count()).where(StoredSequence.name == name)
        counters = sa.select(sa.func.count()).where(Counter.name == name)
        return connection.execute(stored).scalar_one(), connection.execute(counters).scalar_one()


def _files(engine: Engine) -> object:
    with engine.begin() as connection:
        files = register_template("FL", "{year}: File {counter}", connection)
        assert files.next_many(connection, 3, year=2016)[-1] == "2016: File 3"
    return files


@pytest.mark.parametrize("key", [2016, 2017])  # a counter in use, and a new one
def test_held_template_after_delete(engine: Engine, key: int) -> None:
    files = _files(engine)
    with engine.begin() as connection:
        assert delete_sequence(connection, "FL")
    with engine.begin() as connection, pytest.raises(UnknownSequence, match="'FL'"):
        files.next(connection, year=key)  # type: ignore[attr-defined]
    assert _rows(engine, "FL") == (0, 0)


@pytest.mark.parametrize("key", [2016, 2017])
def test_held_template_after_another_process_deleted_it(engine: Engine, key: int) -> None:
    files = _files(engine)
    other = sa.create_engine(engine.url)  # another process: its own engine and registry
    try:
        with fresh_registry(), other.begin() as connection:
            assert delete_sequence(connection, "FL")
    finally:
        other.dispose()
    with engine.begin() as connection, pytest.raises(UnknownSequence, match="'FL'"):
        files.next(connection, year=key)  # type: ignore[attr-defined]
    assert _rows(engine, "FL") == (0, 0)


def test_held_sequence_after_delete(engine: Engine) -> None:
    with engine.begin() as connection:
        invoice = register_sequence("invoice", connection)
        invoice.next(connection)
        assert delete_sequence(connection, "invoice")
    with engine.begin() as connection, pytest.raises(UnknownSequence, match="'invoice'"):
        invoice.next(connection)
    assert _rows(engine, "invoice") == (0, 0)


def test_delete_then_use_again_in_one_transaction(engine: Engine) -> None:
    with engine.begin() as connection:
        assert get_next_value(connection, "inv") == 1
        assert get_next_value(connection, "inv") == 2
    with engine.begin() as connection, counting_apart(engine) as apart:
        assert delete_sequence(connection, "inv")
        assert get_next_value(connection, "inv") == 1  # the reset, django-sequences style
    assert apart == []  # nothing waited for the caller's own locks
    assert _rows(engine, "inv") == (1, 1)
    with fresh_registry(), engine.begin() as connection:
        assert get_last_value(connection, "inv") == 1
        assert get_sequence("inv", connection).next(connection) == 2


def test_delete_then_register_anew_in_one_transaction(engine: Engine) -> None:
    with engine.begin() as connection:
        register_sequence("inv", connection).next(connection)
        register_template("T", "A-{counter}", connection).next(connection)
    with engine.begin() as connection:
        assert delete_sequence(connection, "inv")
        assert delete_sequence(connection, "T")
        with counting_apart(engine) as apart:
            seq = register_sequence("inv", connection, PooledSequence(block=5), start=100)
            tpl = register_template("T", "B-{counter}", connection, start=7)
            assert seq.next(connection) == 100  # its first block, in this transaction
            assert tpl.next(connection) == "B-7"
        assert apart == []  # nothing waited for the caller's own locks
    with fresh_registry(), engine.begin() as connection:
        found = get_sequence("inv", connection)
        assert (found.definition.start, found.strategy) == (100, PooledSequence(block=5))
        assert get_template("T", connection).next(connection) == "B-8"
    with engine.begin() as connection:
        assert seq.next(connection) == 101
        assert tpl.next(connection) == "B-9"


def test_delete_rolled_back_keeps_everything(engine: Engine) -> None:
    with engine.begin() as connection:
        assert get_next_value(connection, "inv") == 1
    with engine.connect() as connection:
        assert delete_sequence(connection, "inv")
        assert get_next_value(connection, "inv") == 1
        connection.rollback()
    with fresh_registry(), engine.begin() as connection:
        assert get_next_value(connection, "inv") == 2


def test_templates_with_one_pattern_count_apart(engine: Engine) -> None:
    with engine.begin() as connection:
        first = register_template("A", "X-{counter}", connection)
        second = register_template("B", "X-{counter}", connection)
        assert first.next(connection) == second.next(connection) == "X-1"
