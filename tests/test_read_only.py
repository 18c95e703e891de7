"""Read-only transactions (a replica, a read-only role): reading works, taking values does not."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import mortar_seq


def _read_only(connection: sa.Connection) -> None:
    """Make the transaction *connection* has just begun read-only, as on a replica."""
    # No SQLAlchemy flag for it; each database spells it its own way.
    if connection.dialect.name == "sqlite":  # no read-only transactions: a read-only connection
        connection.exec_driver_sql("PRAGMA query_only = ON")
    else:  # PostgreSQL, MariaDB: before the transaction's first query
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")


def test_taking_a_value_fails_with_the_database_error_and_last_works(engine: Engine) -> None:
    with engine.connect() as connection:
        kinds: list[mortar_seq.SequenceStrategy] = [mortar_seq.TableSequence()]
        if connection.dialect.supports_sequences:
            # cache=1: last() is then exact on MariaDB, not the end of a cached block.
            kinds.append(mortar_seq.NativeSequence(cache=1))
    with engine.begin() as connection:
        sequences = [mortar_seq.register_sequence(type(k).__name__, connection, k) for k in kinds]
        templates = [
            mortar_seq.register_template(
                f"{type(k).__name__}-label", "{year}-{counter}", connection, impl=k
            )
            for k in kinds
        ]
        for sequence, template in zip(sequences, templates, strict=True):
            assert sequence.next_many(connection, 2)[-1] == 2
            assert template.next(connection, year=2026) == "2026-1"

    # Connections of its own, not pooled: PRAGMA query_only must not outlive the test.
    read_only = sa.create_engine(engine.url, poolclass=sa.NullPool)
    for sequence, template in zip(sequences, templates, strict=True):
        with read_only.connect() as connection, connection.begin():
            _read_only(connection)
            assert sequence.last(connection) == 2  # reading works
            assert template.last(connection, year=2026) == "2026-1"
            with pytest.raises(sa.exc.DBAPIError) as raised:
                sequence.next(connection)
            assert not isinstance(raised.value, mortar_seq.SequenceError)  # untouched
    read_only.dispose()
    with engine.connect() as connection:
        assert [sequence.last(connection) for sequence in sequences] == [2] * len(kinds)
