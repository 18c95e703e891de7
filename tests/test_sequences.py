"""Behaviour of registered sequences, on each database, as a Session or a Connection,
committing each block or inside one outer transaction."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import mortar_seq
from mortar_seq import (
    PooledSequence,
    SequenceConfigError,
    SequenceExhausted,
    TableSequence,
    UnknownSequence,
    get_sequence,
    register_sequence,
)
from mortar_seq import registry as registry_module
from mortar_seq.definition import INT64_MAX, INT64_MIN
from mortar_seq.model import Counter

from .conftest import Caller, fresh_registry


def test_values_count_from_one(caller: Caller) -> None:
    with caller.block() as session:
        invoice = register_sequence("invoice", session)
        assert invoice.name == "invoice"
        assert invoice.last(session) is None
    with caller.block() as session:
        assert [invoice.next(session) for _ in range(3)] == [1, 2, 3]
        assert invoice.last(session) == 3


def test_start_and_step(caller: Caller) -> None:
    with caller.block() as session:
        seq = register_sequence("by-ten", session, start=100, step=10)
        assert [seq.next(session) for _ in range(3)] == [100, 110, 120]
        down = register_sequence("countdown", session, start=3, step=-1)
        assert [down.next(session) for _ in range(5)] == [3, 2, 1, 0, -1]


def test_reset_starts_again(caller: Caller) -> None:
    with caller.block() as session:
        minute = register_sequence("minute", session, start=0, reset=60)
        assert list(itertools.islice(minute.values(session), 62)) == [*range(60), 0, 1]
        odd = register_sequence("odd", session, start=1, step=2, reset=8)
        assert [odd.next(session) for _ in range(6)] == [1, 3, 5, 7, 1, 3]
        down = register_sequence("down", session, start=10, step=-5, reset=0)
        assert [down.next(session) for _ in range(3)] == [10, 5, 10]


def test_next_many_is_a_range_where_contiguous(caller: Caller) -> None:
    with caller.block() as session:
        seq = register_sequence("batch", session, step=2)
        assert seq.next_many(session, 3) == range(1, 7, 2)
        assert seq.next(session) == 7
        assert seq.next_many(session, 1) == range(9, 11, 2)
        assert seq.last(session) == 9


def test_next_many_wraps_like_next(caller: Caller) -> None:
    with caller.block() as session:
        one_by_one = register_sequence("one-by-one", session, start=5, reset=9)
        at_once = register_sequence("at-once", session, start=5, reset=9)
        expected = [one_by_one.next(session) for _ in range(15)]
        taken = [*at_once.next_many(session, 2), *at_once.next_many(session, 8)]
        taken += at_once.next_many(session, 5)
        assert taken == expected
        assert at_once.last(session) == one_by_one.last(session) == expected[-1]


def test_next_many_of_whole_cycles(caller: Caller) -> None:
    with caller.block() as session:
        seq = register_sequence("cycles", session, start=0, reset=3)
        assert list(seq.next_many(session, 6)) == [0, 1, 2, 0, 1, 2]
        assert seq.next(session) == 0


def test_registering_again_is_a_no_op(caller: Caller) -> None:
    with caller.block() as session:
        first = register_sequence("invoice", session, start=5)
        assert first.next(session) == 5
        again = register_sequence("invoice", session, TableSequence(), start=5)
        assert again == first
        assert again.next(session) == 6


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"step": 10}, "'invoice' is already registered with step=1; got step=10"),
        ({"start": 2}, "with start=1; got start=2"),
        ({"reset": 9}, "with reset=None; got reset=9"),
    ],
)
def test_registering_differently_is_refused(
    caller: Caller, settings: dict[str, int], message: str
) -> None:
    with caller.block() as session:
        register_sequence("invoice", session)
        with pytest.raises(SequenceConfigError, match=message):
            register_sequence("invoice", session, **settings)


def test_settings_are_stored(caller: Caller) -> None:
    with caller.block() as session:
        register_sequence("stored", session, start=10, step=5, reset=30)
    registry_module.registry = registry_module.Registry()  # as in another process
    with pytest.raises(UnknownSequence):
        get_sequence("stored")
    with caller.block() as session:
        found = get_sequence("stored", session)
        assert found.definition.settings() == {"start": 10, "step": 5, "reset": 30}
        assert [found.next(session) for _ in range(5)] == [10, 15, 20, 25, 10]
        assert get_sequence("stored", session) is found
        with pytest.raises(UnknownSequence, match="registered in this process"):
            get_sequence("stored")  # what a database stores is not this process's registration
        with pytest.raises(SequenceConfigError, match="already stored with step=5; got step=1"):
            register_sequence("stored", session, start=10, reset=30)
    registry_module.registry = registry_module.Registry()
    conflict = "already stored with step=5; got step=1"
    with caller.block() as session, pytest.raises(SequenceConfigError, match=conflict):
        register_sequence("stored", session, start=10, reset=30)


def test_each_database_its_stored_sequence(tenants: tuple[Engine, Engine]) -> None:
    one, two = tenants
    with fresh_registry(), one.begin() as connection:  # each database's own set-up
        register_sequence("inv", connection, PooledSequence, start=1)
    with fresh_registry(), two.begin() as connection:
        register_sequence("inv", connection, start=5000)
    taken = []
    for engine in (one, two, one, two):
        with Session(engine) as session, session.begin():
            found = get_sequence("inv", session)
            taken.append((type(found.strategy), found.next(session)))
    assert taken == [
        (PooledSequence, 1),
        (TableSequence, 5000),
        (PooledSequence, 2),
        (TableSequence, 5001),
    ]
    with pytest.raises(UnknownSequence, match="registered in this process"):
        get_sequence("inv")


def test_a_sequence_registered_here_is_refused_where_stored_otherwise(
    tenants: tuple[Engine, Engine],
) -> None:
    one, two = tenants
    with fresh_registry(), two.begin() as connection:
        register_sequence("inv", connection, PooledSequence, start=5000)
    with two.begin() as connection:
        assert type(get_sequence("inv", connection).strategy) is PooledSequence
    with one.begin() as connection:
        registered = register_sequence("inv", connection, start=1)
    with two.begin() as connection, pytest.raises(SequenceConfigError, match="start=5000"):
        get_sequence("inv", connection)  # tests/test_tenant_settings.py has more
    with one.begin() as connection:
        assert get_sequence("inv", connection) is registered


def test_unknown_names(caller: Caller) -> None:
    with caller.block() as session:
        with pytest.raises(UnknownSequence) as raised:
            get_sequence("nope", session)
        assert isinstance(raised.value, LookupError)
        assert "'nope'" in str(raised.value)


def test_names_are_case_and_space_sensitive(caller: Caller) -> None:
    names = ["invoice", "Invoice", "INVOICE", "invoice ", " invoice", "invoïce", "発票"]
    with caller.block() as session:
        sequences = [register_sequence(name, session, start=i * 10) for i, name in enumerate(names)]
        assert [seq.next(session) for seq in sequences] == [i * 10 for i in range(len(names))]
        assert [seq.next(session) for seq in sequences] == [i * 10 + 1 for i in range(len(names))]
        # Counter rows this transaction updated are visible to it on every database.
        stored = session.execute(sa.select(Counter.name)).scalars().all()
        assert sorted(stored) == sorted(names)


def test_last_of_a_missing_row_is_none(caller: Caller) -> None:
    with caller.block() as session:
        seq = register_sequence("gone", session)
        seq.next(session)
        session.execute(sa.delete(Counter))
        assert seq.last(session) is None
        with pytest.raises(UnknownSequence, match="in this database"):
            seq.next(session)


@pytest.mark.parametrize(("start", "step"), [(INT64_MAX - 1, 1), (INT64_MIN + 1, -1)])
def test_64_bit_edge(caller: Caller, start: int, step: int) -> None:
    with caller.block() as session:
        seq = register_sequence("edge", session, start=start, step=step)
        assert [seq.next(session), seq.next(session)] == [start, start + step]
        with pytest.raises(SequenceExhausted):
            seq.next(session)
        assert seq.last(session) == start + step  # nothing changed


def test_next_many_past_64_bits_changes_nothing(caller: Caller) -> None:
    with caller.block() as session:
        seq = register_sequence("big", session, start=INT64_MAX - 10)
        with pytest.raises(SequenceExhausted, match="'big' cannot hand out 12 more"):
            seq.next_many(session, 12)
        assert seq.last(session) is None
        assert seq.next_many(session, 11) == range(INT64_MAX - 10, INT64_MAX + 1)
        with pytest.raises(SequenceExhausted):
            seq.next(session)
        assert seq.last(session) == INT64_MAX


def test_extreme_settings(caller: Caller) -> None:
    with caller.block() as session:
        seq = register_sequence("wide", session, start=0, step=2**62, reset=INT64_MAX)
        assert [seq.next(session) for _ in range(3)] == [0, 2**62, 0]
        assert list(seq.next_many(session, 3)) == [2**62, 0, 2**62]
        single = register_sequence("single", session, start=INT64_MIN, step=INT64_MAX, reset=-1)
        assert [single.next(session) for _ in range(2)] == [INT64_MIN, INT64_MIN]


def test_top_level_names() -> None:
    for name in ["register_sequence", "get_sequence", "TableSequence", "SequenceExhausted"]:
        assert name in mortar_seq.__all__
