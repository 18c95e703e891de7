"""AsyncSession and AsyncConnection through run_sync, on aiosqlite and asyncpg."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

import mortar_seq

from .databases import Database
from .tables import committed, issued

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
on_async_drivers = pytest.mark.parametrize("database", list(ASYNC_DRIVERS), indirect=True)


def run(database: Database, scenario: Callable[[AsyncEngine], Awaitable[None]]) -> None:
    """Run *scenario* in an event loop, with an async engine on the test database."""

    async def main() -> None:
        url = database.url.set(drivername=ASYNC_DRIVERS[database.backend])
        async_engine = create_async_engine(url)
        try:
            await scenario(async_engine)
        finally:
            await async_engine.dispose()

    asyncio.run(main())


@on_async_drivers
def test_session_sequence_and_rollback(database: Database, engine: Engine) -> None:
    async def scenario(async_engine: AsyncEngine) -> None:
        async with AsyncSession(async_engine) as session, session.begin():
            invoice = await session.run_sync(
                lambda sync: mortar_seq.register_sequence("invoice", sync, start=10)
            )
            assert await session.run_sync(invoice.next) == 10
            assert await session.run_sync(invoice.next_many, 2) == range(11, 13)

        async with AsyncSession(async_engine) as session:
            assert await session.run_sync(invoice.next) == 13
            await session.rollback()  # gives 13 back

        async with AsyncSession(async_engine) as session:
            assert await session.run_sync(invoice.last) == 12
            assert await session.run_sync(mortar_seq.get_next_value, "invoice") == 13

    run(database, scenario)


@on_async_drivers
def test_connection_and_templates(database: Database, engine: Engine) -> None:
    async def scenario(async_engine: AsyncEngine) -> None:
        async with async_engine.begin() as connection:
            playlist = await connection.run_sync(
                lambda sync: mortar_seq.register_template("PL", "{year}: Playlist {counter}", sync)
            )
            audio = await connection.run_sync(
                lambda sync: mortar_seq.register_template(
                    "AF", "{PL} > Audio File {counter:02d}", sync
                )
            )
            first = await connection.run_sync(playlist.next, year=2015)
            assert first == "2015: Playlist 1"
            assert (
                await connection.run_sync(audio.next, PL=first)
                == "2015: Playlist 1 > Audio File 01"
            )
            assert await connection.run_sync(audio.next_many, 2, PL=first) == [
                "2015: Playlist 1 > Audio File 02",
                "2015: Playlist 1 > Audio File 03",
            ]
            assert await connection.run_sync(playlist.last, year=2015) == first

    run(database, scenario)


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_native_and_pooled(database: Database, engine: Engine) -> None:
    async def scenario(async_engine: AsyncEngine) -> None:
        async with AsyncSession(async_engine) as session, session.begin():
            native = await session.run_sync(
                lambda sync: mortar_seq.register_sequence("native", sync, mortar_seq.NativeSequence)
            )
            pooled = await session.run_sync(
                lambda sync: mortar_seq.register_sequence(
                    "pooled", sync, mortar_seq.PooledSequence(block=5)
                )
            )
            assert await session.run_sync(native.next_many, 3) == range(1, 4)
            # The pool reserves its blocks on a connection of its own, across two blocks here.
            assert await session.run_sync(pooled.next_many, 7) == range(1, 8)

    run(database, scenario)


@on_async_drivers
def test_concurrent_tasks_stay_gapless(database: Database, engine: Engine) -> None:
    async def scenario(async_engine: AsyncEngine) -> None:
        async with async_engine.begin() as connection:
            sequence = await connection.run_sync(
                lambda sync: mortar_seq.register_sequence("shared", sync)
            )

        def take_and_save(session: Session, task: int) -> None:
            value = sequence.next(session)
            session.execute(sa.insert(issued).values(sequence="shared", value=value, worker=task))

        async def task(number: int) -> None:
            for attempt in range(12):
                async with AsyncSession(async_engine) as session:
                    await session.run_sync(take_and_save, number)
                    if attempt % 3:
                        await session.commit()
                    else:
                        await session.rollback()

        await asyncio.gather(*(task(number) for number in range(6)))
        assert committed(engine, "shared") == list(range(1, 6 * 8 + 1))

    run(database, scenario)
