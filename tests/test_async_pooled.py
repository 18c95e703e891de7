"""PooledSequence under asyncio: many tasks, and several event loops, on one pool.

Through ``run_sync`` every task runs on its event loop's thread, and a task that waits for
I/O hands that thread back to the loop. A wait for another task's block reservation must
therefore never block the thread: it would freeze the loop, the reserving task with it.
Each scenario runs in a thread of its own, so that a frozen loop fails the test instead of
freezing the suite.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from mortar_seq import PooledSequence, UnknownSequence, register_sequence
from mortar_seq.db.side import side_engine
from mortar_seq.model import Counter
from mortar_seq.sequence import Sequence

from .databases import Database
from .test_async import ASYNC_DRIVERS, on_async_drivers

HANG = 60  # seconds: far beyond what these scenarios take, far short of forever
TASKS, TRANSACTIONS, EACH = 50, 10, 10  # 50 tasks x 100 values


def finishes(main: Callable[[], None]) -> None:
    """Run *main* in a thread; fail if it has not finished after HANG seconds."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            main()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)  # a frozen loop must not hold pytest
    thread.start()
    thread.join(HANG)
    assert not thread.is_alive(), f"still running after {HANG} s: an event loop hangs"
    if raised:
        raise raised[0]


def async_url(database: Database) -> str:
    return database.url.set(drivername=ASYNC_DRIVERS[database.backend]).render_as_string(False)


def pooled(engine: Engine, name: str) -> Sequence:
    with engine.begin() as connection:
        # A small block: most tasks find the pool empty at some point, many at once.
        return register_sequence(name, connection, PooledSequence(block=7))


async def take(async_engine: AsyncEngine, seq: Sequence, task: int, order: list[int]) -> list[int]:
    """Take TRANSACTIONS x EACH values, half the tasks through an AsyncSession, half through
    an AsyncConnection, each transaction ending with a next_many; append each to *order*
    as it is handed out."""
    mine: list[int] = []
    for _ in range(TRANSACTIONS):
        if task % 2:
            async with AsyncSession(async_engine) as session, session.begin():
                for _ in range(EACH - 2):
                    mine.append(await session.run_sync(seq.next))
                    order.append(mine[-1])
                mine.extend(await session.run_sync(seq.next_many, 2))
                order.extend(mine[-2:])
        else:
            async with async_engine.begin() as connection:
                for _ in range(EACH - 2):
                    mine.append(await connection.run_sync(seq.next))
                    order.append(mine[-1])
                mine.extend(await connection.run_sync(seq.next_many, 2))
                order.extend(mine[-2:])
    return mine


def strictly_increasing(values: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))


@on_async_drivers
def test_many_tasks_on_one_loop(database: Database, engine: Engine) -> None:
    seq = pooled(engine, "tasks")
    order: list[int] = []
    taken: list[list[int]] = []

    async def scenario() -> None:
        async_engine = create_async_engine(async_url(database))
        try:
            jobs = (take(async_engine, seq, task, order) for task in range(TASKS))
            taken.extend(await asyncio.gather(*jobs))
        finally:
            await async_engine.dispose()

    finishes(lambda: asyncio.run(scenario()))
    every = [value for mine in taken for value in mine]
    # One reservation at a time in a process: no block is left half used, nothing repeats.
    assert sorted(every) == list(range(1, TASKS * TRANSACTIONS * EACH + 1))
    assert all(strictly_increasing(mine) for mine in taken)
    assert strictly_increasing(order)  # values increase within the process


@on_async_drivers
def test_tasks_on_several_loops_in_threads(database: Database, engine: Engine) -> None:
    seq = pooled(engine, "loops")
    # No pool of connections: each loop opens its own, so one engine (one pool of values)
    # serves three event loops at once.
    async_engine = create_async_engine(async_url(database), poolclass=NullPool)
    loops, tasks = 3, 8
    taken: list[list[int]] = []
    raised: list[BaseException] = []
    lock = threading.Lock()

    async def first() -> int:
        # SQLAlchemy's first connect of an engine (and of the library's side engine) takes
        # an asyncio lock of the loop it runs on: make both before the loops start.
        async with async_engine.begin() as connection:
            return await connection.run_sync(seq.next)

    async def scenario() -> None:
        order: list[int] = []
        found = await asyncio.gather(*(take(async_engine, seq, n, order) for n in range(tasks)))
        assert strictly_increasing(order)  # within each loop, and each task
        with lock:
            taken.extend(found)

    def in_thread() -> None:
        try:
            asyncio.run(scenario())
        except BaseException as exc:
            raised.append(exc)

    def in_threads() -> None:
        threads = [threading.Thread(target=in_thread) for _ in range(loops)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    try:
        taken.append([asyncio.run(first())])
        finishes(in_threads)
    finally:
        asyncio.run(async_engine.dispose())
    assert raised == []
    every = [value for mine in taken for value in mine]
    assert len(taken) == loops * tasks + 1
    assert sorted(every) == list(range(1, loops * tasks * TRANSACTIONS * EACH + 2))
    assert all(strictly_increasing(mine) for mine in taken)


@on_async_drivers
def test_a_failed_reservation_fails_every_waiting_task(database: Database, engine: Engine) -> None:
    seq = pooled(engine, "gone")
    with engine.begin() as connection:
        # Deleted behind the library's back, as another process's raw DELETE would.
        connection.execute(Counter.__table__.delete().where(Counter.name == "gone"))
    outcomes: list[object] = []

    async def one(async_engine: AsyncEngine) -> None:
        async with async_engine.begin() as connection:
            await connection.run_sync(seq.next)

    async def scenario() -> None:
        async_engine = create_async_engine(async_url(database))
        try:
            jobs = (one(async_engine) for _ in range(10))
            outcomes.extend(await asyncio.gather(*jobs, return_exceptions=True))
        finally:
            await async_engine.dispose()

    finishes(lambda: asyncio.run(scenario()))
    assert len(outcomes) == 10
    assert all(isinstance(outcome, UnknownSequence) for outcome in outcomes), outcomes


@on_async_drivers
def test_a_cancelled_task_leaves_the_pool_working(database: Database, engine: Engine) -> None:
    seq = pooled(engine, "cancelled")
    taken: list[int] = []

    async def scenario() -> None:
        async_engine = create_async_engine(async_url(database))
        try:
            # The engine's first use first: it reads the stored definition on the caller's own
            # connection, and a task cancelled in that SELECT left an SQLite database locked
            # until the statement was collected (SQLAlchemy's and aiosqlite's doing, see
            # block_pool.to_completion), which is not what this test is about.
            async with async_engine.begin() as connection:
                taken.append(await connection.run_sync(seq.next))
            order: list[int] = []
            jobs = [asyncio.create_task(take(async_engine, seq, n, order)) for n in range(20)]
            await asyncio.sleep(0.05)
            for job in jobs[::2]:
                job.cancel()  # some while they reserve, some while they wait for a block
            done = await asyncio.gather(*jobs, return_exceptions=True)
            assert strictly_increasing(order)
            for outcome in done[1::2]:
                assert isinstance(outcome, list), outcome
                taken.extend(outcome)
            async with async_engine.begin() as connection:
                taken.append(await connection.run_sync(seq.next))
        finally:
            await async_engine.dispose()

    finishes(lambda: asyncio.run(scenario()))
    assert len(taken) == len(set(taken)) == 10 * TRANSACTIONS * EACH + 2


@on_async_drivers
def test_a_task_cancelled_in_its_reservation_leaves_the_database_unlocked(
    database: Database, engine: Engine
) -> None:
    # Cancelled while the UPDATE ... RETURNING that reserves its block runs. SQLAlchemy
    # invalidates a connection whose statement was cancelled; aiosqlite then closes it with
    # that statement unfinished, and SQLite keeps such a connection, its write lock and its
    # uncommitted UPDATE, until the statement is garbage collected: every later commit on
    # the database waited out its busy timeout and failed ("database is locked").
    seq = pooled(engine, "cut")
    outcomes: list[object] = []

    async def one(async_engine: AsyncEngine) -> int:
        async with async_engine.begin() as connection:
            return await connection.run_sync(seq.next)

    async def scenario() -> None:
        async_engine = create_async_engine(async_url(database))
        try:
            assert await one(async_engine) == 1  # the engine's first use, before the cut
            victim: list[asyncio.Task[int]] = []

            def cut(connection: object, cursor: object, statement: str, *_: object) -> None:
                if statement.startswith("UPDATE") and victim:
                    # Lands at the statement's await: while the database runs it.
                    asyncio.get_running_loop().call_soon(victim.pop().cancel)

            side = side_engine(async_engine.sync_engine)
            event.listen(side, "before_cursor_execute", cut)
            for _ in range(6):
                await one(async_engine)  # 2 to 7: the block is used up, the next one reserves
            victim.append(asyncio.create_task(one(async_engine)))
            # Kept, as an application may keep it: the cancelled task's outcome and traceback.
            outcomes.extend(await asyncio.gather(victim[0], return_exceptions=True))
            event.remove(side, "before_cursor_execute", cut)
            outcomes.extend(await asyncio.gather(one(async_engine), return_exceptions=True))
        finally:
            await async_engine.dispose()

    finishes(lambda: asyncio.run(scenario()))
    assert isinstance(outcomes[0], asyncio.CancelledError), outcomes  # not another error
    assert isinstance(outcomes[1], int), outcomes  # not "database is locked"
    assert outcomes[1] > 7  # after every value handed out before
