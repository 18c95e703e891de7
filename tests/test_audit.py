"""audit() finds every gap, duplicate and off-series value of a column, and nothing else, on
each database, in one statement, in the caller's transaction."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any, cast

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from mortar_seq import Audit, AuditError, SequenceConfigError, audit
from mortar_seq.definition import INT64_MAX, INT64_MIN

from .conftest import Caller, counting
from .databases import Database


class Base(DeclarativeBase):
    pass


class Invoice(Base):
    __tablename__ = "test_audit_invoice"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    series: Mapped[str] = mapped_column(sa.String(10), default="A")
    number: Mapped[int | None] = mapped_column(sa.BigInteger)
    note: Mapped[str] = mapped_column(sa.String(10), default="")


invoices = cast(sa.Table, Invoice.__table__)


@pytest.fixture(scope="session")
def audit_tables(database: Database) -> None:
    """The tests' invoice table, once per database (dropped with it at the end of the run)."""
    engine = database.engine()
    Base.metadata.create_all(engine)
    engine.dispose()


@pytest.fixture
def numbered(engine: Engine, audit_tables: None) -> Engine:
    """The engine, with an empty invoice table."""
    with engine.begin() as connection:
        connection.execute(invoices.delete())
    return engine


def fill(session: Session | sa.Connection, values: Sequence[int | None], series: str = "A") -> None:
    if values:
        rows = [{"series": series, "number": value, "note": ""} for value in values]
        session.execute(invoices.insert(), rows)


def audited(engine: Engine, values: Sequence[int | None], **options: Any) -> Audit:
    with engine.begin() as connection:
        connection.execute(invoices.delete())
        fill(connection, values)
        return audit(connection, invoices.c.number, **options)


EDGE = INT64_MAX
CASES = [
    # values, options, expected (count, first, last, gaps, duplicates, off_step)
    ([1, 2, 3, 4, 5], {}, (5, 1, 5, [], {}, [])),
    ([5, 3, 1, 2, 4], {"start": 1}, (5, 1, 5, [], {}, [])),
    ([], {}, (0, None, None, [], {}, [])),
    ([], {"start": 1}, (0, None, None, [], {}, [])),
    ([None, None], {"start": 1}, (0, None, None, [], {}, [])),
    ([7], {}, (1, 7, 7, [], {}, [])),
    ([7], {"start": 1}, (1, 7, 7, [range(1, 7)], {}, [])),
    ([1, None, 2, None, 3], {}, (3, 1, 3, [], {}, [])),
    # A gap at the start (only with a start), inside, and just before the end.
    ([3, 4, 5], {}, (3, 3, 5, [], {}, [])),
    ([3, 4, 5], {"start": 1}, (3, 3, 5, [range(1, 3)], {}, [])),
    ([1, 2, 4, 5, 6, 10], {"start": 1}, (6, 1, 10, [range(3, 4), range(7, 10)], {}, [])),
    # Duplicates at the start, inside and at the end, counted by rows.
    ([1, 1, 2, 3, 3, 3, 4, 4], {"start": 1}, (8, 1, 4, [], {1: 2, 3: 3, 4: 2}, [])),
    ([1, 1, 3, 3], {}, (4, 1, 3, [range(2, 3)], {1: 2, 3: 2}, [])),
    # Step 2: gaps are ranges with the step; off-grid values are listed, not gaps.
    ([1, 3, 7, 9], {"step": 2}, (4, 1, 9, [range(5, 7, 2)], {}, [])),
    ([1, 3, 4, 7, 7, 8], {"step": 2}, (6, 1, 8, [range(5, 7, 2)], {7: 2}, [4, 8])),
    ([2, 4, 6], {"start": 1, "step": 2}, (3, 2, 6, [], {}, [2, 4, 6])),
    ([4, 4, 5], {"start": 1, "step": 2}, (3, 4, 5, [range(1, 5, 2)], {4: 2}, [4])),
    # Before the start: off the series, whatever the grid.
    ([-1, 0, 1, 2], {"start": 1}, (4, -1, 2, [], {}, [-1, 0])),
    # A negative step: everything in the direction of the step.
    ([10, 9, 7, 6, 6, 2], {"step": -1}, (6, 10, 2, [range(8, 7, -1), range(5, 2, -1)], {6: 2}, [])),
    ([8, 9], {"start": 10, "step": -1}, (2, 9, 8, [range(10, 9, -1)], {}, [])),
    ([11, 10, 9], {"start": 10, "step": -1}, (3, 11, 9, [], {}, [11])),
    ([9, 7, 1, 4], {"start": 9, "step": -2}, (4, 9, 1, [range(5, 1, -2)], {}, [4])),
    # 64-bit edges: values, starts and steps near ±2**63, no overflow anywhere.
    (
        [INT64_MIN, INT64_MIN + 1, INT64_MIN + 3, EDGE - 2, EDGE],
        {},
        (
            5,
            INT64_MIN,
            EDGE,
            [
                range(INT64_MIN + 2, INT64_MIN + 3),
                range(INT64_MIN + 4, EDGE - 2),
                range(EDGE - 1, EDGE),
            ],
            {},
            [],
        ),
    ),
    ([EDGE, EDGE, EDGE - 1], {"start": EDGE, "step": -1}, (3, EDGE, EDGE - 1, [], {EDGE: 2}, [])),
    (
        [INT64_MIN + 1],
        {"start": INT64_MIN},
        (1, INT64_MIN + 1, INT64_MIN + 1, [range(INT64_MIN, INT64_MIN + 1)], {}, []),
    ),
    ([INT64_MIN, -1, EDGE - 1, EDGE], {"step": EDGE}, (4, INT64_MIN, EDGE, [], {}, [EDGE])),
    (
        [INT64_MIN, EDGE - 1],
        {"step": EDGE},
        (2, INT64_MIN, EDGE - 1, [range(-1, EDGE - 1, EDGE)], {}, []),
    ),
    ([EDGE, 0, INT64_MIN + 1], {"step": -EDGE}, (3, EDGE, INT64_MIN + 1, [], {}, [])),
    (
        [EDGE, INT64_MIN + 1, INT64_MIN],
        {"start": EDGE, "step": -EDGE},
        (3, EDGE, INT64_MIN, [range(0, INT64_MIN + 1, -EDGE)], {}, [INT64_MIN]),
    ),
    (
        [INT64_MIN + 5, INT64_MIN + 8],
        {"start": INT64_MIN, "step": 5},
        (
            2,
            INT64_MIN + 5,
            INT64_MIN + 8,
            [range(INT64_MIN, INT64_MIN + 5, 5)],
            {},
            [INT64_MIN + 8],
        ),
    ),
]


@pytest.mark.parametrize(("values", "options", "expected"), CASES)
def test_finds_exactly_what_is_planted(
    numbered: Engine, values: list[int | None], options: dict[str, int], expected: tuple[Any, ...]
) -> None:
    found = audited(numbered, values, **options)
    assert found == Audit(*expected)
    assert found.clean == (not (expected[3] or expected[4] or expected[5]))


def test_rows_of_equal_value_in_any_order(numbered: Engine) -> None:
    # Rows of equal value come out of the database in no set order; each audit must agree.
    values = [9, 4, 4, 1, 9, 6, 4, 1, 3, 9, 3, 6] * 3
    expected = Audit(36, 1, 9, [range(2, 3), range(5, 6), range(7, 9)], {}, [])
    expected.duplicates.update({1: 6, 3: 6, 4: 9, 6: 6, 9: 9})
    for _ in range(5):
        assert audited(numbered, values, start=1) == expected


def test_where_audits_one_series(numbered: Engine) -> None:
    with numbered.begin() as connection:
        fill(connection, [1, 2, 3, 5], series="A")
        fill(connection, [1, 1, 2, 4, None], series="B")
        by_series = {
            name: audit(connection, invoices.c.number, start=1, where=invoices.c.series == name)
            for name in ("A", "B", "C")
        }
        both = audit(connection, invoices.c.number, start=1)
    assert by_series == {
        "A": Audit(4, 1, 5, [range(4, 5)], {}, []),
        "B": Audit(4, 1, 4, [range(3, 4)], {1: 2}, []),
        "C": Audit(0, None, None, [], {}, []),
    }
    assert both == Audit(8, 1, 5, [], {1: 3, 2: 2}, [])


def test_through_the_orm_and_in_the_callers_transaction(caller: Caller, numbered: Engine) -> None:
    with caller.block() as session:
        fill(session, [1, 2, 4])
        if isinstance(session, Session):  # pending objects are flushed first, as for any query
            session.add_all([Invoice(number=5), Invoice(number=5, series="B")])
        else:
            fill(session, [5])
            fill(session, [5], series="B")
        found = audit(session, Invoice.number, start=1, where=Invoice.note == "")
        assert found == Audit(5, 1, 5, [range(3, 4)], {5: 2}, [])
        assert session.in_transaction()  # neither committed nor rolled back
        assert audit(session, Invoice.number, where=Invoice.series == "B").count == 1


def test_never_commits(numbered: Engine) -> None:
    for kind in ("session", "connection"):
        with Session(numbered) as orm, numbered.connect() as core:
            session = orm if kind == "session" else core
            fill(session, [1, 2, 3])
            assert audit(session, invoices.c.number).count == 3
            session.rollback()
            assert audit(session, invoices.c.number).count == 0, kind


@pytest.mark.parametrize("kind", ["session", "connection"])
@pytest.mark.parametrize(
    "options", [{}, {"start": 1}, {"step": 2}, {"start": 1, "step": -3}], ids=repr
)
def test_one_statement(numbered: Engine, kind: str, options: dict[str, int]) -> None:
    with Session(numbered) as orm, numbered.connect() as core:
        session = orm if kind == "session" else core
        fill(session, [1, 2, 2, 5, 7])
        with counting(numbered) as sent:
            audit(session, invoices.c.number, where=invoices.c.series == "A", **options)
        assert len(sent) == 1, sent
        session.rollback()


@pytest.mark.parametrize(
    "column",
    ["number", 3, None, invoices, Invoice, sa.text("number")],
    ids=["str", "int", "None", "Table", "class", "text"],  # the same in every process (xdist)
)
def test_a_column_or_nothing(numbered: Engine, column: Any) -> None:
    with numbered.connect() as connection, pytest.raises(TypeError, match="column must be"):
        audit(connection, column)


@pytest.mark.parametrize("column", [invoices.c.series, sa.cast(invoices.c.number, sa.Float)])
def test_a_column_of_integers(numbered: Engine, column: Any) -> None:
    with numbered.connect() as connection, pytest.raises(TypeError, match="must hold integers"):
        audit(connection, column)


def test_where_must_be_an_expression(numbered: Engine) -> None:
    with numbered.connect() as connection, pytest.raises(TypeError, match="where must be"):
        audit(connection, invoices.c.number, where="series = 'A'")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"step": 0}, "step must not be 0"),
        ({"step": 1.0}, "step must be an integer"),
        ({"step": "2"}, "step must be an integer"),
        ({"step": True}, "step must be an integer"),
        ({"step": None}, "step must be an integer"),
        ({"step": 2**63}, "step must fit in 64 bits"),
        ({"step": INT64_MIN}, "step must lie within"),
        ({"start": "1"}, "start must be an integer"),
        ({"start": 2**64}, "start must fit in 64 bits"),
    ],
    ids=repr,
)
def test_bad_settings(numbered: Engine, options: dict[str, Any], message: str) -> None:
    with numbered.connect() as connection, pytest.raises(SequenceConfigError, match=message):
        audit(connection, invoices.c.number, **options)


def reference(values: Sequence[int | None], start: int | None, step: int) -> Audit:
    """What audit() should say, the slow and obvious way."""
    present = [value for value in values if value is not None]
    if not present:
        return Audit(0, None, None, [], {}, [])
    ordered = sorted(set(present), reverse=step < 0)
    origin = ordered[0] if start is None else start
    on_series = [v for v in ordered if (v - origin) % step == 0 and (v - origin) * step >= 0]
    gaps, expected = [], origin
    for value in on_series:
        if value != expected:
            gaps.append(range(expected, value, step))
        expected = value + step
    counts = collections.Counter(present)
    return Audit(
        len(present),
        ordered[0],
        ordered[-1],
        gaps,
        {value: counts[value] for value in ordered if counts[value] > 1},
        [value for value in ordered if value not in on_series],
    )


EDGES = [INT64_MIN, INT64_MIN + 1, INT64_MIN + 2, INT64_MAX - 2, INT64_MAX - 1, INT64_MAX]
values_strategy = st.lists(
    st.tuples(
        st.sampled_from(["A", "B"]),
        st.one_of(st.integers(-12, 12), st.none(), st.sampled_from(EDGES)),
    ),
    max_size=16,
)
steps = st.one_of(st.integers(-3, 3).filter(bool), st.sampled_from([INT64_MAX, -INT64_MAX, 5]))
starts = st.one_of(st.none(), st.integers(-12, 12), st.sampled_from(EDGES))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=values_strategy, step=steps, start=starts)
def test_agrees_with_a_plain_python_audit(
    numbered: Engine, rows: list[tuple[str, int | None]], step: int, start: int | None
) -> None:
    with numbered.begin() as connection:
        connection.execute(invoices.delete())
        if rows:
            connection.execute(invoices.insert(), [{"series": s, "number": v} for s, v in rows])
        found = audit(
            connection, Invoice.number, start=start, step=step, where=Invoice.series == "A"
        )
    expected = reference([value for series, value in rows if series == "A"], start, step)
    assert found == expected


# Only SQLite stores what it is given in an INTEGER column (type affinity); elsewhere the
# column refuses such values. After -1, 'n/a' - 1 = -1 in SQLite: the first stray is then no
# break in the series, and only a later row shows it.
STRAYS = [("n/a",), ("n/a", "n/b"), (1.5, 2.5), (b"\x01",), (1e30,)]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize("strays", STRAYS, ids=repr)
@pytest.mark.parametrize("step", [1, -1, 2])
def test_a_stored_value_that_is_not_an_integer(
    numbered: Engine, strays: tuple[Any, ...], step: int
) -> None:
    with numbered.begin() as connection:
        fill(connection, [-3, -2, -1, 1, 3])
        rows = [{"series": "A", "number": stray, "note": ""} for stray in strays]
        connection.execute(invoices.insert(), rows)
        with pytest.raises(AuditError) as raised:
            audit(connection, invoices.c.number, step=step)
    assert isinstance(raised.value, ValueError)  # as before, for except clauses
    message = str(raised.value)
    assert "test_audit_invoice.number" in message
    assert any(repr(stray) in message for stray in strays), message
