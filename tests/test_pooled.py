"""PooledSequence: blocks reserved in a transaction of their own, handed out from memory."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from mortar_seq import PooledSequence, SequenceConfigError, get_sequence, register_sequence
from mortar_seq import registry as registry_module

from .conftest import counting
from .tables import marker


@pytest.mark.parametrize("block", [0, -5, True, 2.5])
def test_bad_block(block: Any) -> None:
    with pytest.raises(SequenceConfigError, match="block must be an integer of at least 1"):
        PooledSequence(block=block)


def _reservations(sent: list[str]) -> int:
    return sum(statement.lstrip().upper().startswith("UPDATE") for statement in sent)


def test_one_reservation_per_block(engine: Engine) -> None:
    with engine.begin() as connection:
        seq = register_sequence("ids", connection, PooledSequence(block=100))
    with engine.connect() as connection, counting(engine) as sent:
        values = [seq.next(connection) for _ in range(250)]
        assert seq.next_many(connection, 120) == range(251, 371)
        connection.rollback()
    assert values == list(range(1, 251))
    assert _reservations(sent) == 4  # 1-100, 101-200, 201-300, 301-400 (enough for 120 more)
    with engine.connect() as connection:
        assert seq.last(connection) == 370  # this process's, whatever its transaction did
        assert seq.next(connection) == 371  # a rollback gives nothing back


def test_another_registry_continues_after_reserved_blocks(engine: Engine) -> None:
    with engine.begin() as connection:
        seq = register_sequence("ids", connection, PooledSequence(block=10))
        assert seq.next(connection) == 1
    registry_module.registry = registry_module.Registry()
    with engine.begin() as connection:
        found = get_sequence("ids", connection)
        assert found.strategy == PooledSequence(block=10)
        # Same engine, same process: the pool is shared.
        assert found.next(connection) == 2


def test_threads_get_distinct_increasing_values(engine: Engine) -> None:
    with engine.begin() as connection:
        seq = register_sequence("threads", connection, PooledSequence(block=50))
    taken: dict[int, list[int]] = {}

    def work(index: int) -> None:
        with engine.connect() as connection:
            taken[index] = [seq.next(connection) for _ in range(300)]
            connection.commit()

    threads = [threading.Thread(target=work, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    everything = [value for values in taken.values() for value in values]
    assert sorted(everything) == list(range(1, 1801))
    assert all(values == sorted(values) for values in taken.values())


def test_no_deadlock_with_the_callers_open_transaction(engine: Engine) -> None:
    with engine.begin() as connection:
        seq = register_sequence("busy", connection, PooledSequence(block=10))
    with engine.connect() as connection:
        connection.execute(marker.insert().values(note="writing"))  # holds SQLite's write lock
        values = list(seq.next_many(connection, 25)) + [seq.next(connection) for _ in range(10)]
        connection.commit()
    assert values == list(range(1, 36))
    with engine.connect() as connection:
        assert seq.next(connection) == 36


def test_fork_never_reuses_the_parents_block(engine: Engine) -> None:
    with engine.begin() as connection:
        seq = register_sequence("forked", connection, PooledSequence(block=100))
    with engine.begin() as connection:
        assert seq.next(connection) == 1  # this process now holds 2..100
    fork = multiprocessing.get_context("fork")
    results = fork.Queue()

    def child() -> None:
        engine.dispose(close=False)  # the parent's connections stay the parent's
        with engine.connect() as connection:
            results.put([seq.next(connection) for _ in range(3)])
            connection.commit()

    process = fork.Process(target=child)
    process.start()
    from_child = results.get(timeout=60)
    process.join(30)
    with engine.connect() as connection:
        from_parent = [seq.next(connection) for _ in range(3)]
    assert from_parent == [2, 3, 4]
    assert from_child == [101, 102, 103]


def test_sqlite_write_lock_rollback_gives_back_only_unshared_values(engine: Engine) -> None:
    with engine.begin() as connection:
        seq = register_sequence("audited", connection, PooledSequence(block=3))
    with engine.connect() as connection:
        assert seq.next_many(connection, 3) == range(1, 4)  # one block, reserved apart
        connection.execute(marker.insert().values(note="x"))
        taken = seq.next_many(connection, 2)  # pool dry while this transaction writes
        connection.rollback()
    with engine.connect() as connection:
        again = seq.next_many(connection, 2)
        connection.commit()
    assert taken == range(4, 6)
    # On SQLite the two were taken in the rolled-back transaction, so they come back;
    # elsewhere they were reserved apart (a block of 3) and never come back.
    assert again == (range(4, 6) if engine.dialect.name == "sqlite" else range(6, 8))
