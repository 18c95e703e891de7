"""mortar_seq used as applications use it: tests/test_typing.py checks it with ``mypy --strict``.

It is type-checked, never run (pytest does not collect it).
"""

from __future__ import annotations

import collections.abc as abc
from typing import assert_type

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, scoped_session, sessionmaker

import mortar_seq
from mortar_seq import NativeSequence, Sequence, Template


def setup(connection: sa.Connection) -> tuple[Sequence, Template]:
    invoice = mortar_seq.register_sequence("invoice", connection, NativeSequence, start=10)
    label = mortar_seq.register_template("label", "{year}: Label {counter:03d}", connection)
    return invoice, label


def with_a_session(engine: sa.Engine, invoice: Sequence, label: Template) -> None:
    with Session(engine) as session, session.begin():
        assert_type(invoice.next(session), int)
        assert_type(invoice.next(session, nowait=True), int)
        assert_type(invoice.next_many(session, 10), abc.Sequence[int])
        assert_type(invoice.last(session), int | None)
        assert_type(next(iter(invoice.values(session))), int)
        assert_type(label.next(session, year=2026), str)
        assert_type(label.next(session, nowait=True, year=2026), str)
        assert_type(label.next_many(session, 3, year=2026), list[str])
        assert_type(label.last(session, year=2026), str | None)
        assert_type(next(iter(label.values(session, year=2026))), str)
        assert_type(mortar_seq.get_next_value(session, "order", nowait=True), int)
        assert_type(mortar_seq.get_next_values(session, 5, "order"), abc.Sequence[int])
        assert_type(mortar_seq.get_last_value(session, "order"), int | None)
        assert_type(mortar_seq.get_sequence("invoice", session), Sequence)
        assert_type(mortar_seq.get_template("label", session), Template)


def with_a_connection(engine: sa.Engine, invoice: Sequence, label: Template) -> None:
    with engine.begin() as connection:
        numbers: abc.Sequence[int] = invoice.next_many(connection, 2)
        assert_type(label.next(connection, year=2026), str)
        assert_type(mortar_seq.delete_sequence(connection, "order"), bool)
        print(numbers)


def with_a_scoped_session(engine: sa.Engine, label: Template) -> None:
    # Flask-SQLAlchemy's db.session is one.
    db_session = scoped_session(sessionmaker(engine))
    invoice = mortar_seq.register_sequence("invoice", db_session)
    assert_type(invoice.next(db_session), int)
    assert_type(label.next(db_session, year=2026), str)
    assert_type(mortar_seq.get_next_value(db_session, "order"), int)
    db_session.commit()


async def with_asyncio(engine: AsyncEngine, invoice: Sequence, label: Template) -> None:
    async with AsyncSession(engine) as session, session.begin():
        assert_type(await session.run_sync(invoice.next), int)
        assert_type(await session.run_sync(invoice.next, nowait=True), int)
        assert_type(await session.run_sync(invoice.next_many, 3), abc.Sequence[int])
        assert_type(await session.run_sync(invoice.last), int | None)
        assert_type(await session.run_sync(label.next, year=2026), str)
        assert_type(await session.run_sync(label.next, nowait=True, year=2026), str)
        assert_type(await session.run_sync(label.next_many, 2, year=2026), list[str])
        assert_type(await session.run_sync(label.last, year=2026), str | None)
        assert_type(await session.run_sync(mortar_seq.get_next_value, "order"), int)
    connection: AsyncConnection
    async with engine.begin() as connection:
        assert_type(await connection.run_sync(label.next, year=2026), str)
        assert_type(await connection.run_sync(invoice.next_many, 2), abc.Sequence[int])
