"""The one-call forms, as in django-sequences."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mortar_seq import (
    SequenceConfigError,
    UnknownSequence,
    delete_sequence,
    get_last_value,
    get_next_value,
    get_next_values,
    get_sequence,
    register_sequence,
)
from mortar_seq import registry as registry_module
from mortar_seq.model import Counter, StoredSequence

from .conftest import Caller


def test_first_call_creates(caller: Caller) -> None:
    with caller.block() as session:
        assert get_last_value(session) is None
        assert get_next_value(session) == 1
        assert get_next_value(session) == 2
        assert get_last_value(session) == 2
        assert get_next_value(session, "other", initial_value=100) == 100
        assert get_last_value(session, "other") == 100
        assert get_last_value(session) == 2


def test_next_values(caller: Caller) -> None:
    with caller.block() as session:
        assert get_next_values(session, 3, "batch") == range(1, 4)
        assert get_next_values(session, 2, "batch") == range(4, 6)
        assert get_next_value(session, "batch") == 6
        assert get_next_values(session, 1, "fresh", initial_value=7) == range(7, 8)


def test_settings_are_stored_with_the_sequence(caller: Caller) -> None:
    with caller.block() as session:
        assert [get_next_value(session, "minute", 0, 3) for _ in range(4)] == [0, 1, 2, 0]
    registry_module.registry = registry_module.Registry()  # as in another process
    with caller.block() as session:
        # Neither the reset nor the start needs repeating.
        assert [get_next_value(session, "minute") for _ in range(3)] == [1, 2, 0]
        assert get_next_value(session, "minute", initial_value=50) == 1
        with pytest.raises(SequenceConfigError, match="stored with reset=3; got reset_value=9"):
            get_next_value(session, "minute", reset_value=9)
        assert get_sequence("minute", session).definition.reset == 3


def test_shares_registered_sequences(caller: Caller) -> None:
    with caller.block() as session:
        seq = register_sequence("invoice", session, start=10, step=10)
        assert seq.next(session) == 10
        assert get_next_value(session, "invoice") == 20
        assert seq.next(session) == 30
        assert get_last_value(session, "invoice") == 30


def test_delete(caller: Caller) -> None:
    with caller.block() as session:
        assert delete_sequence(session, "never") is False
        seq = register_sequence("doomed", session)
        assert seq.next(session) == 1
        assert delete_sequence(session, "doomed") is True
        assert get_last_value(session, "doomed") is None
        with pytest.raises(UnknownSequence):
            get_sequence("doomed")
        for table in (StoredSequence, Counter):
            query = sa.select(sa.func.count()).select_from(table).where(table.name == "doomed")
            assert session.execute(query).scalar_one() == 0
        # The name can be used again, from the start (on MariaDB after a one-second wait for
        # the lock this transaction's delete holds; see storage.create_missing).
        assert get_next_value(session, "doomed") == 1


def test_recreated_after_a_rollback_removed_it(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        assert get_next_value(connection, "rolled") == 1
        connection.rollback()  # on PostgreSQL and SQLite the rows go with it
        assert get_next_value(connection, "rolled") == 1
        connection.commit()
        assert get_next_value(connection, "rolled") == 2
        connection.commit()


def test_recreated_after_another_process_deleted_it(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        assert get_next_value(connection, "shared") == 1
    with engine.begin() as connection:
        registry_module.Registry().delete(connection, "shared")  # another process's registry
    with engine.begin() as connection:
        assert get_next_value(connection, "shared") == 1
