"""Reads never lock what writers need, nor wait for them: a dashboard listing counters in an
open transaction never stalls invoicing, and invoicing never stalls the dashboard.

Each side's lock waits are bounded to a few seconds, so that a lock fails the test quickly
(the database's lock-timeout error) instead of waiting for the server's default.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from mortar_seq import (
    Sequence,
    Template,
    audit,
    delete_sequence,
    get_last_value,
    register_sequence,
    register_template,
)
from mortar_seq.cli import main

from .tables import issued

WAIT = 2  # seconds: the lock-wait bound of every connection the test opens


def _bounded(url: URL) -> URL:
    """*url* with its lock waits bounded to WAIT seconds, for any connection made from it."""
    backend = url.get_backend_name()
    if backend == "postgresql":
        return url.update_query_dict({"options": f"-c lock_timeout={WAIT}s"})
    if backend == "sqlite":
        return url.update_query_dict({"timeout": str(WAIT)})
    return url.update_query_dict({"init_command": f"SET innodb_lock_wait_timeout={WAIT}"})


@pytest.fixture
def bounded(engine: Engine) -> Iterator[Engine]:
    """Another engine on the test's database (another process), its lock waits bounded."""
    made = sa.create_engine(_bounded(engine.url))
    yield made
    made.dispose()


@pytest.fixture
def series(engine: Engine) -> tuple[Sequence, Template]:
    """A sequence numbering rows of test_issued, and a template with a counter, in use."""
    with engine.begin() as connection:
        seq = register_sequence("S", connection)
        tpl = register_template("T", "{k}-{counter}", connection)
        seq.insert(connection, issued, {"sequence": "S", "worker": 0}, column="value")
        tpl.next(connection, k="a")
    return seq, tpl


Read = Callable[[Connection, Sequence, Template], object]
READS: dict[str, Read] = {
    "tpl.counters": lambda session, seq, tpl: tpl.counters(session),
    "seq.last": lambda session, seq, tpl: seq.last(session),
    "tpl.last": lambda session, seq, tpl: tpl.last(session, k="a"),
    "audit": lambda session, seq, tpl: audit(
        session, issued.c.value, where=issued.c.sequence == "S"
    ),
    "get_last_value": lambda session, seq, tpl: get_last_value(session, "S"),
}


def _write(connection: Connection, seq: Sequence, tpl: Template) -> None:
    """What invoicing does: take values of counters in use and of a new one, number a row."""
    tpl.next(connection, k="a")
    tpl.next(connection, k="new")
    seq.insert(connection, issued, {"sequence": "S", "worker": 1}, column="value")


@pytest.mark.parametrize("read", READS)
def test_an_open_read_never_stalls_a_writer(
    engine: Engine, bounded: Engine, series: tuple[Sequence, Template], read: str
) -> None:
    seq, tpl = series
    with bounded.connect() as reader:
        READS[read](reader, seq, tpl)  # its transaction stays open
        with bounded.connect() as writer:
            started = time.monotonic()
            _write(writer, seq, tpl)
            writer.commit()
            assert time.monotonic() - started < WAIT
        READS[read](reader, seq, tpl)
        reader.rollback()
    with engine.connect() as connection:
        assert tpl.counters(connection) == {"a-{counter}": "a-2", "new-{counter}": "new-1"}
        assert seq.last(connection) == 2


@pytest.mark.parametrize("read", [*READS, "cli list"])
def test_a_read_never_waits_for_a_writer(
    engine: Engine,
    bounded: Engine,
    series: tuple[Sequence, Template],
    read: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seq, tpl = series
    with bounded.connect() as writer:
        _write(writer, seq, tpl)  # holds what it wrote, uncommitted
        started = time.monotonic()
        if read == "cli list":
            url = _bounded(engine.url).render_as_string(hide_password=False)
            assert main(["--url", url, "list", "--json"]) == 0
            listed = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
            counters = listed["T"]["counters"]
            assert counters["a-{counter}"] == "a-1"
            # Listed where counters are made apart, committed at once (MariaDB): unused.
            assert counters.get("new-{counter}") is None
            assert listed["S"]["last"] == 1
        else:
            with bounded.connect() as reader:
                READS[read](reader, seq, tpl)
                reader.rollback()
        assert time.monotonic() - started < WAIT
        writer.rollback()


# What the listing sees without locking anything: the latest counters, and the caller's own
# transaction's deletes and creations.


def test_counters_made_by_others_after_the_snapshot_are_listed(
    engine: Engine, bounded: Engine, series: tuple[Sequence, Template]
) -> None:
    _, tpl = series
    with engine.connect() as reader:
        assert list(tpl.counters(reader)) == ["a-{counter}"]  # its snapshot begins here
        with bounded.begin() as writer:
            tpl.next(writer, k="b")
        # As before: a counter made since the snapshot is listed, its value as last() says.
        assert tpl.counters(reader) == {
            "a-{counter}": "a-1",
            "b-{counter}": tpl.last(reader, k="b"),
        }
        reader.rollback()


def test_counters_deleted_in_the_callers_transaction_are_not_listed(
    engine: Engine, series: tuple[Sequence, Template]
) -> None:
    _, tpl = series
    with engine.connect() as connection:
        tpl.next(connection, k="b")
        connection.commit()
        assert tpl.delete_counter(connection, k="a")  # uncommitted: others still see it
        assert tpl.counters(connection) == {"b-{counter}": "b-1"}
        assert tpl.next(connection, k="a") == "a-1"  # made again, in this transaction
        assert tpl.counters(connection) == {"a-{counter}": "a-1", "b-{counter}": "b-1"}
        connection.rollback()
    with engine.connect() as connection:
        assert tpl.counters(connection) == {"a-{counter}": "a-1", "b-{counter}": "b-1"}


def test_a_template_deleted_and_registered_again_lists_only_its_new_counters(
    engine: Engine, series: tuple[Sequence, Template]
) -> None:
    with engine.connect() as connection:
        assert delete_sequence(connection, "T")
        again = register_template("T", "{k}-{counter}", connection, start=10)
        assert again.counters(connection) == {}
        again.next(connection, k="z")
        assert again.counters(connection) == {"z-{counter}": "z-10"}
        connection.rollback()
