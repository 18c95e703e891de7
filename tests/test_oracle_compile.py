"""Oracle (no server here): every statement the table, pooled and template paths send,
compiled against SQLAlchemy's Oracle dialect, with no counter key stored as '' (NULL there)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import oracle, postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.sql.visitors import iterate

from mortar_seq import (
    PooledSequence,
    delete_sequence,
    get_next_value,
    get_next_values,
    register_sequence,
    register_template,
)
from mortar_seq.db.dialects import Remembered
from mortar_seq.db.side import side_engine
from mortar_seq.model import PLAIN_KEY, Counter, CounterKey

ORACLE = oracle.dialect()


def _sent(engine: Engine) -> list[tuple[Any, dict[str, Any]]]:
    """Run every path of the table, pooled and template implementations; return the
    statements (as SQLAlchemy constructs) and parameters sent on any connection."""
    sent: list[tuple[Any, dict[str, Any]]] = []

    def record(conn: Any, clause: Any, multiparams: Any, params: Any, options: Any) -> None:
        sent.append((clause, params or (multiparams[0] if multiparams else {}) or {}))

    engines = {engine, side_engine(engine)}
    for each in engines:
        sa.event.listen(each, "before_execute", record)
    try:
        with engine.begin() as connection:
            invoice = register_sequence("invoice", connection, reset=100)
            pooled = register_sequence("ids", connection, PooledSequence(block=3))
            parent = register_template("PL", "{year}: Playlist {counter}", connection)
            child = register_template("AF", "{PL} > File {counter:02d}", connection)
            invoice.next(connection)
            invoice.next_many(connection, 5, nowait=True)
            invoice.last(connection)
            invoice.restart(connection, 10)
            pooled.next_many(connection, 7)
            playlist = parent.next(connection, year=2015)
            child.next_many(connection, 2, PL=playlist)
            child.last(connection, PL=playlist)
            child.counters(connection)
            get_next_value(connection, "receipt")
            get_next_values(connection, 3, "receipt")
            delete_sequence(connection, "AF")
    finally:
        for each in engines:
            sa.event.remove(each, "before_execute", record)
    return sent


def test_every_statement_compiles_for_oracle(engine: Engine) -> None:
    # Recorded on each database: Oracle takes PostgreSQL's RETURNING paths and MariaDB's
    # creations apart. Left out, what Oracle is never sent: INSERT ... ON CONFLICT DO
    # NOTHING, and MariaDB's UPDATE ... LAST_INSERT_ID() (Oracle has UPDATE ... RETURNING).
    statements = [
        (clause, params)
        for clause, params in _sent(engine)
        if isinstance(clause, sa.sql.ClauseElement)
        and not isinstance(clause, (postgresql.Insert, sqlite.Insert))
        and not any(isinstance(part, Remembered) for part in iterate(clause))
    ]
    assert len(statements) > 20
    keys = 0
    for clause, params in statements:
        compiled = clause.compile(dialect=ORACLE)
        assert str(compiled), clause
        values = compiled.construct_params(params)
        for bind in compiled.binds.values():
            if not isinstance(bind.type, CounterKey):
                continue
            name = compiled.bind_names[bind]
            value = values[compiled.escaped_bind_names.get(name, name)]
            processor = bind.type._cached_bind_processor(ORACLE)
            stored = processor(value) if processor else value
            assert stored not in ("", None), (str(compiled), name)
            keys += 1
    assert keys > 10  # the check above ran


def test_the_apart_insert_of_a_plain_counter() -> None:
    """Oracle creates rows apart (no ON CONFLICT): the plain counter's key is stored as '-'."""
    insert = sa.insert(Counter).values(name="invoice", key="", value=None)
    compiled = insert.compile(dialect=ORACLE)
    processor = Counter.__table__.c.key.type._cached_bind_processor(ORACLE)
    assert processor is not None
    assert processor(compiled.params["key"]) == PLAIN_KEY
    assert "INSERT INTO mortar_seq_counter (name, key, value)" in str(compiled)
