"""A COMMIT whose outcome is unknown: run_in_transaction finds out before running the work again.

The network is made to fail by a proxy between the driver and a real server: the COMMIT's
answer lost after the server committed, or the COMMIT itself lost. The unit of work must be
committed exactly once either way.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from mortar_seq import (
    SequenceConfigError,
    commit_marker,
    create_tables,
    get_next_value,
    register_sequence,
    retry,
    run_in_transaction,
    run_in_transaction_async,
)
from mortar_seq.model import CommitMarker

from .cut_proxy import Cut, CutProxy, cut_proxy
from .databases import Database
from .tables import committed, issued, test_metadata

servers = pytest.mark.parametrize("database", ["postgresql", "mariadb"], indirect=True)
markers = CommitMarker.__table__


def take(session: Session | sa.Connection) -> int:
    value = get_next_value(session, "gapless")
    session.execute(sa.insert(issued).values(sequence="gapless", value=value, worker=0))
    return value


@pytest.fixture
def proxy(engine: Engine) -> Iterator[CutProxy]:
    with engine.begin() as connection:
        register_sequence("gapless", connection)
    assert engine.url.port is not None
    with cut_proxy(engine.url.port) as running:
        yield running


def through(engine: Engine, proxy: CutProxy) -> Engine:
    return sa.create_engine(engine.url.set(port=proxy.port))


def marker_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(markers)).scalar_one())


@servers
@pytest.mark.parametrize("bind", ["engine", "sessionmaker"])
def test_answer_lost_after_commit_is_not_run_again(
    engine: Engine, proxy: CutProxy, bind: str
) -> None:
    """The server committed, the answer never came back: the helper finds the unit's marker
    and returns that attempt's result; the work ran once and its value is committed once."""
    proxied = through(engine, proxy)
    attempts = 0

    def work(session: Any) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            proxy.arm(Cut.ANSWER)
        return take(session)

    try:
        made = proxied if bind == "engine" else sessionmaker(proxied)
        assert run_in_transaction(made, work, timeout=10) == 1
    finally:
        proxied.dispose()
    assert proxy.cuts == 1
    assert attempts == 1
    assert committed(engine, "gapless") == [1]


@servers
def test_commit_lost_before_the_server_is_run_again(engine: Engine, proxy: CutProxy) -> None:
    """The COMMIT never reached the server: no marker is found, so the unit runs again and
    its value is committed once."""
    proxied = through(engine, proxy)
    attempts = 0

    def work(connection: sa.Connection) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            proxy.arm(Cut.COMMIT)
        return take(connection)

    try:
        assert run_in_transaction(proxied, work, timeout=10) == 1
    finally:
        proxied.dispose()
    assert proxy.cuts == 1
    assert attempts == 2
    assert committed(engine, "gapless") == [1]


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
@pytest.mark.parametrize("cut", [Cut.ANSWER, Cut.COMMIT])
def test_async_commit_outcome_found_out(engine: Engine, proxy: CutProxy, cut: Cut) -> None:
    """asyncpg, an AsyncSession: committed once whichever half of the COMMIT was lost."""
    url = engine.url.set(drivername="postgresql+asyncpg", port=proxy.port)
    attempts = 0

    async def work(session: Any) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            proxy.arm(cut)
        return int(await session.run_sync(take))

    async def main() -> int:
        async_engine = create_async_engine(url)
        try:
            return await run_in_transaction_async(async_sessionmaker(async_engine), work)
        finally:
            await async_engine.dispose()

    assert asyncio.run(main()) == 1
    assert proxy.cuts == 1
    assert attempts == (1 if cut is Cut.ANSWER else 2)
    assert committed(engine, "gapless") == [1]


@servers
@pytest.mark.parametrize("ends_with", ["commit", "rollback"])
def test_outcome_waits_for_a_commit_still_under_way(engine: Engine, ends_with: str) -> None:
    """A transaction holding the marker has neither committed nor rolled back yet (its
    COMMIT is still on its way): the answer waits for it, then tells what it did."""
    token = commit_marker.new_token()
    answers: list[bool] = []
    with engine.connect() as holder:
        commit_marker.write_marker(holder, token)
        asking = threading.Thread(
            target=lambda: answers.append(
                retry.committed(engine, token, deadline=time.monotonic() + 10)
            )
        )
        asking.start()
        time.sleep(0.5)
        assert not answers  # waiting for the holder's transaction
        if ends_with == "commit":
            holder.commit()
        else:
            holder.rollback()
        asking.join(timeout=10)
    assert answers == [ends_with == "commit"]
    assert marker_rows(engine) == (1 if ends_with == "commit" else 0)


def test_markers_are_cleaned_up(engine: Engine) -> None:
    """Each acknowledged unit's marker is deleted by a later unit of the same process, and
    markers older than a day (a process that stopped) are swept: the table stays small."""
    with engine.begin() as connection:
        register_sequence("gapless", connection)
        stale = int(time.time()) - commit_marker.KEPT_SECONDS - 60
        connection.execute(sa.insert(markers), [{"token": "stale", "written_at": stale}])
    units = commit_marker.CLEAN_EVERY + 5
    for _ in range(units):
        run_in_transaction(engine, take)
    assert committed(engine, "gapless") == list(range(1, units + 1))
    if engine.dialect.name == "sqlite":
        assert marker_rows(engine) == 1  # no marker written: a file has no connection to lose
    else:
        assert marker_rows(engine) <= 5  # only those written since the last clean-up


@servers
def test_one_statement_per_attempt(engine: Engine) -> None:
    """The marker costs one INSERT in the unit's transaction, nothing else."""
    with engine.begin() as connection:
        register_sequence("gapless", connection)
    sent: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    run_in_transaction(engine, lambda connection: None)
    assert len(sent) == 1
    assert sent[0].upper().startswith("INSERT INTO MORTAR_SEQ_COMMIT_MARKER")


@pytest.mark.parametrize("empty_database", ["postgresql", "mariadb"], indirect=True)
def test_missing_marker_table_is_a_clear_error(empty_database: Database) -> None:
    """A database whose tables predate the marker (not migrated): SequenceConfigError naming
    the table and how to make it; the unit's work is rolled back."""
    engine = empty_database.engine()
    try:
        create_tables(engine)
        test_metadata.create_all(engine)
        with engine.begin() as connection:
            register_sequence("gapless", connection)
            markers.drop(connection)
        with pytest.raises(SequenceConfigError, match=r"mortar_seq_commit_marker.*alembic upgrade"):
            run_in_transaction(engine, take)
        assert committed(engine, "gapless") == []
    finally:
        engine.dispose()
