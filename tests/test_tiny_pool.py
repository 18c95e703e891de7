"""The library never waits for a connection of the caller's pool while holding one of it.

Every implementation, templates and the one-call forms, on engines whose pool is exactly as
large as the caller's own use of it: any wait for a second connection of that pool would
end in ``sqlalchemy.exc.TimeoutError`` after ``pool_timeout``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mortar_seq import (
    NativeSequence,
    PooledSequence,
    TableSequence,
    delete_sequence,
    get_last_value,
    get_next_value,
    get_next_values,
    get_sequence,
    get_template,
    register_sequence,
    register_template,
)

from .conftest import SessionLike, fresh_registry

POOL_TIMEOUT = 3  # seconds: a wait for the caller's own pool fails the test quickly


def _tiny(engine: Engine, size: int = 1) -> Engine:
    return sa.create_engine(engine.url, pool_size=size, max_overflow=0, pool_timeout=POOL_TIMEOUT)


@pytest.fixture
def tiny(engine: Engine) -> Iterator[Engine]:
    """An engine of one connection on the test's (emptied) database."""
    made = _tiny(engine)
    yield made
    made.dispose()


def _impls(engine: Engine) -> list[object]:
    impls: list[object] = [TableSequence(), PooledSequence(block=3)]
    if engine.dialect.name != "sqlite":
        impls.append(NativeSequence())
    return impls


def _blocks(engine: Engine, kind: str) -> Iterator[SessionLike]:
    """Each item one transaction of the caller (a Session or a Connection), committed."""
    while True:
        if kind == "session":
            with Session(engine) as session, session.begin():
                yield session
        else:
            with engine.begin() as connection:
                yield connection


@pytest.mark.parametrize("kind", ["session", "connection"])
def test_registered_sequences(tiny: Engine, kind: str) -> None:
    impls = _impls(tiny)
    blocks = _blocks(tiny, kind)
    session = next(blocks)
    sequences = [register_sequence(f"s{index}", session, impl) for index, impl in enumerate(impls)]
    taken: dict[str, list[int]] = {seq.name: [] for seq in sequences}
    for _ in range(4):  # several transactions, several pooled refills
        session = next(blocks)
        for seq in sequences:
            taken[seq.name].append(seq.next(session))
            taken[seq.name].extend(seq.next_many(session, 4))
    session = next(blocks)
    for seq in sequences:
        assert taken[seq.name] == sorted(set(taken[seq.name])), seq.strategy
        assert len(taken[seq.name]) == 20
        assert seq.last(session) is not None
    with fresh_registry():  # a process that finds them stored
        session = next(blocks)
        for seq in sequences:
            assert get_sequence(seq.name, session).next(session) > taken[seq.name][-1]
    session = next(blocks)
    for seq in sequences:
        assert delete_sequence(session, seq.name)


@pytest.mark.parametrize("kind", ["session", "connection"])
def test_one_call_forms(tiny: Engine, kind: str) -> None:
    blocks = _blocks(tiny, kind)
    session = next(blocks)
    assert get_last_value(session, "new") is None
    assert get_next_value(session, "new") == 1
    assert get_next_values(session, 3, "other", 10) == range(10, 13)
    session = next(blocks)
    assert get_next_value(session, "new") == 2
    assert get_last_value(session, "other") == 12
    assert delete_sequence(session, "new")
    assert get_next_value(session, "new") == 1  # deleted and used again, in one transaction
    session = next(blocks)
    assert get_next_value(session, "new") == 2


@pytest.mark.parametrize("kind", ["session", "connection"])
def test_templates(tiny: Engine, kind: str) -> None:
    blocks = _blocks(tiny, kind)
    session = next(blocks)
    templates = [
        register_template(f"T{index}", f"{{year}}-{index}-{{counter}}", session, impl=impl)
        for index, impl in enumerate(_impls(tiny))
    ]
    child = register_template("C", "{T0}/{counter}", session)
    for year in (2025, 2026):
        session = next(blocks)
        for template in templates:
            assert template.next_many(session, 2, year=year)[-1].endswith("-2")
        parent = templates[0].last(session, year=year)
        assert child.next(session, T0=parent) == f"{parent}/1"
    with fresh_registry():
        session = next(blocks)
        assert get_template("C", session).next(session, T0=parent) == f"{parent}/2"


def test_threads_as_many_as_connections_through_many_refills(engine: Engine) -> None:
    workers, values, block = 2, 60, 4
    small = _tiny(engine, size=workers)
    try:
        with small.begin() as connection:
            seq = register_sequence("ids", connection, PooledSequence(block=block))
        taken: dict[int, list[int]] = {}
        errors: list[BaseException] = []
        barrier = threading.Barrier(workers)

        def work(index: int) -> None:
            mine: list[int] = []
            try:
                barrier.wait()
                for _ in range(values // 5):
                    with Session(small) as session, session.begin():  # holds a connection
                        mine.extend(seq.next(session) for _ in range(5))
            except BaseException as exc:  # reported by the test below
                errors.append(exc)
            taken[index] = mine

        started = time.monotonic()
        threads = [threading.Thread(target=work, args=(index,)) for index in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        small.dispose()
    assert errors == []
    every = [value for mine in taken.values() for value in mine]
    assert len(every) == len(set(every)) == workers * values
    for mine in taken.values():
        assert mine == sorted(mine)
    # Many refills (at least values / block each), none of which waited for the pool.
    assert elapsed < POOL_TIMEOUT
