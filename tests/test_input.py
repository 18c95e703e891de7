"""Bad input: a clear SequenceConfigError naming the problem, and nothing written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mortar_seq import (
    SequenceConfigError,
    SequenceError,
    UnknownSequence,
    delete_sequence,
    get_last_value,
    get_next_value,
    get_next_values,
    get_sequence,
    register_sequence,
)
from mortar_seq.definition import INT64_MAX, INT64_MIN
from mortar_seq.model import Counter, StoredSequence

from .tables import canary


def _rows(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return [
            *connection.execute(sa.select(StoredSequence.__table__)).all(),
            *connection.execute(sa.select(Counter.__table__)).all(),
        ]


BAD_NAMES = [
    ("", "1 to 100 characters, not 0"),
    ("x" * 101, "1 to 100 characters, not 101"),
    (None, "must be a string, not NoneType"),
    (42, "must be a string, not int"),
    (b"invoice", "must be a string, not bytes"),
    ("in\x00voice", "must not contain NUL"),
    ("\ud800", "must be valid Unicode"),
]


@pytest.mark.parametrize(("name", "message"), BAD_NAMES)
def test_bad_names(engine: Engine, name: Any, message: str) -> None:
    calls: list[Callable[[sa.Connection], object]] = [
        lambda c: register_sequence(name, c),
        lambda c: get_next_value(c, name),
        lambda c: get_next_values(c, 2, name),
        lambda c: get_last_value(c, name),
        lambda c: delete_sequence(c, name),
        lambda c: get_sequence(name, c),
    ]
    with engine.begin() as connection:
        for call in calls:
            with pytest.raises(SequenceConfigError, match=message):
                call(connection)
    assert _rows(engine) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"step": 0}, "step must not be 0"),
        ({"start": True}, "start must be an integer, not True"),
        ({"step": False}, "step must be an integer, not False"),
        ({"start": 1.5}, "start must be an integer, not 1.5"),
        ({"start": "1"}, "start must be an integer, not '1'"),
        ({"start": INT64_MAX + 1}, "start must fit in 64 bits"),
        ({"step": INT64_MIN - 1}, "step must fit in 64 bits"),
        ({"reset": 1}, "reset=1 must lie beyond start=1 in the direction of step=1"),
        ({"reset": 0}, "reset=0 must lie beyond start=1"),
        ({"start": 0, "step": -1, "reset": 5}, "reset=5 must lie beyond start=0"),
        ({"reset": None, "start": INT64_MIN, "step": 1} | {"reset": INT64_MAX}, "reset - start"),
        ({"impl": "table"}, "impl must be one of TableSequence"),
        ({"impl": object}, "impl must be one of TableSequence"),
    ],
)
def test_bad_settings(engine: Engine, settings: dict[str, Any], message: str) -> None:
    with engine.begin() as connection, pytest.raises(SequenceConfigError, match=message):
        register_sequence("invoice", connection, **settings)
    assert _rows(engine) == []


@pytest.mark.parametrize(
    ("count", "message"),
    [
        (0, "count must be at least 1, not 0"),
        (-3, "count must be at least 1"),
        (True, "count must be an integer, not True"),
        (2.0, "count must be an integer"),
        (INT64_MAX, "count \\* step must fit in 64 bits"),
    ],
)
def test_bad_counts(engine: Engine, count: Any, message: str) -> None:
    with engine.begin() as connection:
        seq = register_sequence("invoice", connection, step=2)
        seq.next(connection)
    before = _rows(engine)
    with engine.begin() as connection:
        with pytest.raises(SequenceConfigError, match=message):
            seq.next_many(connection, count)
        with pytest.raises(SequenceConfigError, match=message.replace("step", ".*")):
            get_next_values(connection, count, "invoice")
    assert _rows(engine) == before


def test_bad_one_call_settings(engine: Engine) -> None:
    with engine.begin() as connection:
        with pytest.raises(SequenceConfigError, match="start must be an integer"):
            get_next_value(connection, "x", initial_value="1")  # type: ignore[arg-type]
        with pytest.raises(SequenceConfigError, match="reset=1 must lie beyond start=1"):
            get_next_value(connection, "x", reset_value=1)
    assert _rows(engine) == []


HOSTILE_NAMES = [
    "x'; DROP TABLE canary; --",
    'x"; DROP TABLE canary; --',
    "x`; DROP TABLE canary; --",
    "Robert'); DELETE FROM canary; --",
    "%s%s%(name)s{0}{name}",
    "\\'\\\"\\\\",
    "名前 🚀 ∑",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_names_are_data(engine: Engine, name: str) -> None:
    with engine.begin() as connection:
        connection.execute(canary.insert().values(id=1))
        seq = register_sequence(name, connection, start=7)
        assert seq.next(connection) == 7
        assert get_next_value(connection, name) == 8
        assert get_last_value(connection, name) == 8
    with engine.begin() as connection:
        assert connection.execute(sa.select(canary.c.id)).scalars().all() == [1]
        assert connection.execute(sa.select(Counter.name)).scalars().all() == [name]
        assert delete_sequence(connection, name) is True


def test_errors_share_one_base() -> None:
    assert issubclass(SequenceConfigError, SequenceError)
    assert issubclass(SequenceConfigError, ValueError)
    assert issubclass(UnknownSequence, LookupError)
