"""Round trips: in steady state one statement per call on every database (UPDATE ... RETURNING,
or on MariaDB UPDATE ... SET value = LAST_INSERT_ID(...))."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mortar_seq import get_next_value, get_next_values, register_sequence
from mortar_seq.storage import creates_apart

from .conftest import counting, fresh_registry


@pytest.mark.parametrize("kind", ["session", "connection"])
def test_steady_state_statements(engine: Engine, kind: str) -> None:
    with engine.begin() as connection:
        seq = register_sequence("invoice", connection, reset=1000)
        get_next_value(connection, "plain")
    session: Session | sa.Connection
    with Session(engine) as orm, engine.connect() as core:
        session = orm if kind == "session" else core
        session.execute(sa.select(1))  # begin the transaction
        calls = [
            lambda: seq.next(session),
            lambda: seq.next_many(session, 50),
            lambda: get_next_value(session, "plain"),
            lambda: get_next_values(session, 1000, "plain"),
        ]
        for call in calls:
            with counting(engine) as sent:
                call()
            assert len(sent) == 1, sent
        session.rollback()


@pytest.mark.parametrize("kind", ["session", "connection"])
def test_first_use_statements(engine: Engine, kind: str) -> None:
    """A new name's first use: the lookup, the creation, the value, on every connection used."""
    with engine.connect() as warm:  # a warm pool, as in a running application
        warm.execute(sa.select(1))
    session: Session | sa.Connection
    with Session(engine) as orm, engine.connect() as core:
        session = orm if kind == "session" else core
        session.execute(sa.select(1))  # begin the transaction
        with counting(engine) as sent:
            assert get_next_value(session, "new") == 1
        session.commit()
    if creates_apart(session):
        # MariaDB: the lookup in the caller's snapshot and beyond it; whether the counter is
        # held by anyone; counter and definition inserted apart, one statement each with
        # its lock wait bounded; the value (one UPDATE ... LAST_INSERT_ID).
        assert len(sent) == 6, sent
    else:
        # The lookup, counter and definition inserted in the caller's transaction, the value.
        assert len(sent) == 4, sent


def test_another_database_is_checked_once(tenants: tuple[Engine, Engine]) -> None:
    """A sequence used on a database it was not registered with: its definition there is
    looked up on the first call only, and later calls cost what they always did."""
    one, two = tenants
    other = sa.create_engine(two.url)  # another process: its own engine and registry
    with fresh_registry(), other.begin() as connection:
        register_sequence("invoice", connection, start=1000)
    other.dispose()
    with one.begin() as connection:
        seq = register_sequence("invoice", connection, start=1000)
    with two.connect() as connection:
        connection.execute(sa.select(1))  # begin the transaction
        costs = []
        for _ in range(3):
            with counting(two) as sent:
                seq.next(connection)
            costs.append(len(sent))
        connection.rollback()
    assert costs == [2, 1, 1]  # the lookup once, then one statement as on its own database
