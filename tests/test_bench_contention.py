"""The contention benchmark's own checks: its transactions number as the contenders should,
its check stops a run whose committed numbers are not 1..N, its goals say "NOT met"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import mortar_seq
from benchmarks import contention
from tests.conftest import fresh_registry
from tests.databases import Database


@pytest.fixture
def bench_engine(empty_database: Database) -> Iterator[Engine]:
    engine = empty_database.engine()
    mortar_seq.create_tables(engine)
    contention.metadata.create_all(engine)
    with fresh_registry():
        yield engine
    engine.dispose()


def _task(contender: str, series: tuple[str, ...], flipped: bool = False) -> contention.Task:
    return contention.Task(contender, series, 0.0, 0.0, 0.0, flipped)


@pytest.mark.parametrize("contender", ["next() first", "at commit"])
def test_numbered_transactions_pass_the_check(bench_engine: Engine, contender: str) -> None:
    series = ("invoice", "note")
    with bench_engine.begin() as connection:
        for name in series:
            mortar_seq.register_sequence(name, connection)
    run = contention.sqlalchemy_transaction(bench_engine)
    retries = [run(_task(contender, series, flipped=n % 2 == 1)) for n in range(3)]
    assert retries == [0, 0, 0]
    contention.check(bench_engine, contender, series, 3)
    with bench_engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(contention.lines)) == 9


@pytest.mark.parametrize(
    ("stored", "committed"),
    [([1, 2, 4], 3), ([1, 2, 2], 3), ([1, 2], 3), ([None, 1], 2)],
    ids=["gap", "duplicate", "lost", "unnumbered"],
)
def test_check_fails_the_run_on_wrong_numbers(
    bench_engine: Engine, stored: list[int | None], committed: int
) -> None:
    with bench_engine.begin() as connection:
        rows = [{"series": "invoice", "number": number} for number in stored]
        connection.execute(sa.insert(contention.invoices), rows)
    with pytest.raises(SystemExit, match="FAILED: at commit committed"):
        contention.check(bench_engine, "at commit", ("invoice",), committed)


def _measured(
    contender: str, rate: float, retries: int = 0, scenario: str = "one series"
) -> contention.Measured:
    return contention.Measured(
        "postgresql", scenario, 10, 4, contender, 0, rate, 1.0, 2.0, retries, committed=1
    )


def test_goals_say_what_is_met_and_what_is_not() -> None:
    rates = {
        "no numbering": 100.0,
        "django-sequences": 40.0,
        "next() first": 35.0,
        "at commit": 90.0,
    }
    measured = [_measured(contender, rate) for contender, rate in rates.items()]
    measured += [
        _measured(
            contender, 50.0, retries=3 if contender == "at commit" else 0, scenario="two series"
        )
        for contender in contention.CONTENDERS
    ]
    assert contention.goals(measured) == [
        "PostgreSQL, W = 10 ms, 4 workers: at commit vs no numbering: 0.90x (>= 0.8: met)",
        "PostgreSQL, W = 10 ms, 4 workers: at commit vs django-sequences: 2.25x (>= 2.5: NOT met)",
        "PostgreSQL, two series, 4 workers: at commit retried 3 times (0: NOT met); "
        "no numbering 0, django-sequences 0, next() first 0",
    ]
    assert "| PostgreSQL | 10 | 4 | 100/s | 40/s | 35/s | 90/s | 0.90x / 2.25x |" in (
        contention.markdown_table(measured)
    )
