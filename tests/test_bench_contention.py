"""The contention benchmark's own checks: its transactions number as the contenders should,
its check stops a run whose committed numbers are not 1..N, its goals say "NOT met"."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import time
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


# The statements one transaction sends, BEGIN and COMMIT aside: the commit marker (not on
# SQLite), the invoice and its lines (one statement), and each contender's numbering.
STATEMENTS = {
    "no numbering": {"sqlite": 2, "postgresql": 3, "mysql": 3},
    "next() first": {"sqlite": 3, "postgresql": 4, "mysql": 4},
    # The counter and the rows in one statement on PostgreSQL, two elsewhere.
    "at commit": {"sqlite": 4, "postgresql": 4, "mysql": 5},
}


@pytest.mark.parametrize("contender", list(STATEMENTS))
def test_statements_per_transaction_are_counted(bench_engine: Engine, contender: str) -> None:
    with bench_engine.begin() as connection:
        mortar_seq.register_sequence("invoice", connection)
    run = contention.sqlalchemy_transaction(bench_engine)
    before = contention._sent[0]
    for _ in range(3):
        run(_task(contender, ("invoice",)))
    assert contention._sent[0] - before == 3 * STATEMENTS[contender][bench_engine.dialect.name]


def test_a_window_reports_its_cpu_and_statements(bench_engine: Engine) -> None:
    run = contention.sqlalchemy_transaction(bench_engine)
    now = time.monotonic()
    task = contention.Task("no numbering", ("invoice",), 0.0, now, now + 0.05, False)
    committed, retries, latencies, cpu, sent = contention._measure(run, task)
    assert committed >= 1
    assert retries == 0
    assert len(latencies) <= committed
    assert 0 < cpu < 1.0  # this process's CPU time, in a window of 0.05 s
    assert sent == committed * STATEMENTS["no numbering"][bench_engine.dialect.name]


def _django_statements(url: str, transactions: int) -> int:
    """In a process of its own (Django is configured once per process): the statements
    django-sequences' contender counted for *transactions* transactions."""
    from django.core.management import call_command

    run = contention.django_transaction(sa.make_url(url))
    call_command("migrate", run_syncdb=True, verbosity=0)
    run(_task("django-sequences", ("invoice",)))  # its sequence row created
    before = contention._sent[0]
    for _ in range(transactions):
        run(_task("django-sequences", ("invoice",)))
    return contention._sent[0] - before


@pytest.mark.parametrize("empty_database", ["sqlite"], indirect=True)
def test_django_statements_are_counted(bench_engine: Engine) -> None:
    # Before: the counting wrapper went with its garbage-collected context manager, and
    # every django-sequences figure read 0 statements.
    url = bench_engine.url.render_as_string(hide_password=False)
    with concurrent.futures.ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        sent = pool.submit(_django_statements, url, 3).result(timeout=120)
    # At least its number, the invoice and the lines (one bulk INSERT), per transaction.
    assert sent >= 3 * 3
