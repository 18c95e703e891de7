"""Benchmark mortar_seq against the raw driver, hand-written SQLAlchemy and django-sequences.

    pip install -e '.[bench]'
    python benchmarks/run.py [--quick] [--backends sqlite,postgresql,mariadb] [--only invoices]

The "invoices" scenarios time one unit of work, a transaction that numbers an invoice row
and commits, for each contender: django-sequences itself (Django configured in this
process against the same database: ``transaction.atomic(): get_next_value();
Invoice.objects.create()``), the hand-written SQLAlchemy floor (one Core statement per
value: UPDATE ... RETURNING, or ``LAST_INSERT_ID(expr)`` on MariaDB; then the INSERT) on a
Session and on a Connection, the raw driver replaying that floor's two statements, and
the library's ``next()`` + INSERT, ``seq.insert`` and ``seq.default``.

Each backend gets a fresh database (as in the tests; the same URL variables apply). Every
contender runs in the same process, interleaved (in an order rotated each repetition),
over several repetitions; the table shows values per second (median, min and max) and
the library's ratio to its reference: the median of the ratios within each repetition,
where the two ran back to back. Raw-driver contenders replay statements recorded from
SQLAlchemy's cursor events (the library's in the sequences scenarios, the floor's in the
invoices ones) through psycopg, PyMySQL or sqlite3.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mortar_seq
import mortar_seq.db.dialects
from mortar_seq import NativeSequence, PooledSequence, TableSequence
from mortar_seq.model import Counter
from tests.databases import Unreachable, fresh_database

bench = sa.MetaData()
rows = sa.Table(
    "bench_rows",
    bench,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

# Built once, executed with parameters: what a user who cares about speed writes.
INSERT = rows.insert()


class _Base(DeclarativeBase):
    metadata = bench


class BenchInvoice(_Base):
    """Numbered at flush by the library's column default."""

    __tablename__ = "bench_invoice"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(
        sa.BigInteger, default=mortar_seq.column_default("bench-orm")
    )


invoices = BenchInvoice.__table__

Run = Callable[[int], None]  # takes n values (in whatever transactions), returns when done


@dataclass
class Result:
    backend: str
    scenario: str
    contender: str
    rates: list[float]
    statements: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


# -- transactions that take a value, insert a row and commit ---------------------------


def library_transactions(engine: Engine, seq: mortar_seq.Sequence, kind: str) -> Run:
    def run(n: int) -> None:
        if kind == "session":
            with Session(engine) as session:
                for _ in range(n):
                    with session.begin():
                        session.execute(INSERT, {"value": seq.next(session)})
        else:
            with engine.connect() as connection:
                for _ in range(n):
                    with connection.begin():
                        connection.execute(INSERT, {"value": seq.next(connection)})

    return run


def core_transactions(engine: Engine, name: str, kind: str) -> Run:
    """The floor for any SQLAlchemy library: hand-written Core, the plainest correct SQL.

    One statement per value, on a Session as on a Connection (the Core table, not the
    mapped class: an ORM-enabled UPDATE would slow the floor down): UPDATE ... RETURNING
    where the database has it, else MariaDB's documented ``LAST_INSERT_ID(expr)`` idiom,
    whose value the driver reports as the cursor's lastrowid.
    """
    counters = Counter.__table__
    where = sa.and_(counters.c.name == name, counters.c.key == "")
    returning = engine.dialect.update_returning
    if returning:
        bump = sa.update(counters).where(where).values(value=counters.c.value + 1)
        bump = bump.returning(counters.c.value)
    else:
        last_insert_id = sa.func.last_insert_id(counters.c.value + 1)
        bump = sa.update(counters).where(where).values(value=last_insert_id)

    def take(session: Session | sa.Connection) -> int:
        if returning:
            return int(session.execute(bump).scalar_one())
        return int(session.execute(bump).lastrowid)

    def run(n: int) -> None:
        if kind == "session":
            with Session(engine) as session:
                for _ in range(n):
                    with session.begin():
                        session.execute(INSERT, {"value": take(session)})
        else:
            with engine.connect() as connection:
                for _ in range(n):
                    with connection.begin():
                        connection.execute(INSERT, {"value": take(connection)})

    return run


def recorded(engine: Engine, action: Callable[[sa.Connection], None]) -> list[tuple[str, Any]]:
    """Run *action* once and return the (statement, parameters) the driver was sent."""
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as connection:
            action(connection)
            connection.commit()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return sent


def raw_transactions(engine: Engine, statements: list[tuple[str, Any]]) -> Run:
    """Replay *statements* with the bare driver (a pool checkout, used directly)."""

    def run(n: int) -> None:
        connection = engine.raw_connection()
        driver = connection.driver_connection
        try:
            cursor = driver.cursor()
            for _ in range(n):
                for statement, parameters in statements:
                    cursor.execute(statement, parameters)
                    if cursor.description is not None:
                        cursor.fetchall()
                driver.commit()
        finally:
            connection.close()

    return run


# -- native and pooled -----------------------------------------------------------------


def library_loop(engine: Engine, call: Callable[[sa.Connection], object], per_call: int) -> Run:
    def run(n: int) -> None:
        with engine.connect() as connection:
            for _ in range(n // per_call):
                call(connection)
            connection.commit()

    return run


def raw_loop(engine: Engine, statement: str, parameters: Any, per_call: int) -> Run:
    def run(n: int) -> None:
        connection = engine.raw_connection()
        driver = connection.driver_connection
        try:
            cursor = driver.cursor()
            for _ in range(n // per_call):
                cursor.execute(statement, parameters)
                cursor.fetchall()
            driver.commit()
        finally:
            connection.close()

    return run


# -- several processes -----------------------------------------------------------------


def _worker(
    url: str, contender: str, statements: list[tuple[str, Any]], n: int, start: Any, done: Any
) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        seq = mortar_seq.get_sequence("bench-table", connection)
    runs = {
        "library, Session": lambda: library_transactions(engine, seq, "session"),
        "library, Connection": lambda: library_transactions(engine, seq, "connection"),
        "SQLAlchemy Core, Session": lambda: core_transactions(engine, "bench-table", "session"),
        "SQLAlchemy Core, Connection": lambda: core_transactions(
            engine, "bench-table", "connection"
        ),
        "raw driver": lambda: raw_transactions(engine, statements),
    }
    run = runs[contender]()
    run(1)  # warm up: connect, compile
    start.wait()
    run(n)
    done.put(n)
    engine.dispose()


def in_processes(
    url: str,
    contender: str,
    statements: list[tuple[str, Any]],
    workers: int,
    worker: Callable[..., None] = _worker,
) -> Callable[[int], float]:
    """Return a runner that takes n values over *workers* processes running *worker* and
    returns the seconds."""
    spawn = multiprocessing.get_context("spawn")

    def timed(n: int) -> float:
        start, done = spawn.Barrier(workers + 1), spawn.Queue()
        each = n // workers
        processes = [
            spawn.Process(target=worker, args=(url, contender, statements, each, start, done))
            for _ in range(workers)
        ]
        for process in processes:
            process.start()
        start.wait()
        began = time.perf_counter()
        for _ in processes:
            done.get(timeout=600)
        seconds = time.perf_counter() - began
        for process in processes:
            process.join()
        return seconds

    return timed


# -- measuring -------------------------------------------------------------------------


def statements_per_value(engine: Engine, run: Run, n: int) -> float:
    count = 0

    def tally(*_: Any) -> None:
        nonlocal count
        count += 1

    sa.event.listen(engine, "before_cursor_execute", tally)
    try:
        run(n)
    finally:
        sa.event.remove(engine, "before_cursor_execute", tally)
    return count / n


def rotated(names: Iterable[str], repetition: int) -> list[str]:
    """*names* in the order of a repetition: rotated each time, so that no contender always
    runs after the same one (a checkpoint or a vacuum it leaves behind)."""
    listed = list(names)
    shift = repetition % len(listed)
    return listed[shift:] + listed[:shift]


def measure(contenders: dict[str, Run], n: int, repetitions: int) -> dict[str, list[float]]:
    """Run the contenders interleaved, *repetitions* times; values per second each time."""
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for run in contenders.values():
        run(max(1, n // 10))  # warm up
    for repetition in range(repetitions):
        for name in rotated(contenders, repetition):
            run = contenders[name]
            began = time.perf_counter()
            run(n)
            rates[name].append(n / (time.perf_counter() - began))
    return rates


def bench_backend(backend: str, engine: Engine, quick: bool) -> list[Result]:
    repetitions = 3 if quick else 5
    transactions = 100 if quick else 400
    results: list[Result] = []
    mortar_seq.create_tables(engine)
    bench.create_all(engine)
    with engine.begin() as connection:
        table = mortar_seq.register_sequence("bench-table", connection, TableSequence)
        core_name = "bench-core"
        mortar_seq.register_sequence(core_name, connection)
        mortar_seq.get_next_value(connection, core_name)  # the floor's UPDATE needs a value
        pooled = mortar_seq.register_sequence("bench-pooled", connection, PooledSequence)
    with engine.connect() as connection:
        native_supported = connection.dialect.supports_sequences

    def add(scenario: str, rates: dict[str, list[float]], counts: dict[str, float]) -> None:
        for contender, values in rates.items():
            results.append(Result(backend, scenario, contender, values, counts.get(contender)))

    # TableSequence in a transaction that inserts a row and commits, one worker.
    one_transaction = recorded(
        engine,
        lambda c: c.execute(INSERT, {"value": table.next(c)}),
    )
    contenders = {
        "library, Session": library_transactions(engine, table, "session"),
        "library, Connection": library_transactions(engine, table, "connection"),
        "SQLAlchemy Core, Session": core_transactions(engine, core_name, "session"),
        "SQLAlchemy Core, Connection": core_transactions(engine, core_name, "connection"),
        "raw driver": raw_transactions(engine, one_transaction),
    }
    # The library's own statements: next() alone, without the row's INSERT.
    counts = {
        "library, Connection": statements_per_value(engine, library_loop(engine, table.next, 1), 50)
    }
    add("table: 1 worker", measure(contenders, transactions, repetitions), counts)

    # The same, four worker processes on one sequence.
    url = engine.url.render_as_string(hide_password=False)
    rates: dict[str, list[float]] = {}
    for repetition in range(repetitions):
        for contender in rotated(contenders, repetition):
            seconds = in_processes(url, contender, one_transaction, 4)(transactions * 2)
            rates.setdefault(contender, []).append(transactions * 2 / seconds)
    add("table: 4 workers", rates, {})

    # NativeSequence: next() and next_many(1000) against raw nextval.
    loops = 500 if quick else 2000
    if native_supported:
        with engine.begin() as connection:
            native = mortar_seq.register_sequence("bench-native", connection, NativeSequence)
        nextval = recorded(engine, lambda c: native.next(c))[0]
        many = recorded(engine, lambda c: native.next_many(c, 1000))[0]
        contenders = {
            "library next()": library_loop(engine, native.next, 1),
            "raw nextval": raw_loop(engine, *nextval, 1),
        }
        counts = {"library next()": statements_per_value(engine, contenders["library next()"], 20)}
        add("native: next()", measure(contenders, loops, repetitions), counts)
        contenders = {
            "library next_many(1000)": library_loop(
                engine, lambda c: native.next_many(c, 1000), 1000
            ),
            "raw set-returning": raw_loop(engine, *many, 1000),
        }
        counts = {
            "library next_many(1000)": statements_per_value(
                engine, contenders["library next_many(1000)"], 2000
            )
        }
        add("native: next_many(1000)", measure(contenders, loops * 20, repetitions), counts)
        reference = (
            "raw nextval",
            contenders_rate(results, backend, "native: next()", "raw nextval"),
        )
    else:
        reference = (
            "raw driver (table: 1 worker)",
            contenders_rate(results, backend, "table: 1 worker", "raw driver"),
        )

    # PooledSequence: values per second from memory.
    pooled_run = library_loop(engine, pooled.next, 1)
    counts = {"library next()": statements_per_value(engine, pooled_run, 5000)}
    add("pooled: next()", measure({"library next()": pooled_run}, loops * 10, repetitions), counts)
    results.append(Result(backend, "pooled: next()", f"reference: {reference[0]}", [reference[1]]))
    return results


def contenders_rate(results: list[Result], backend: str, scenario: str, contender: str) -> float:
    return found(results, backend, scenario, contender).median


def found(results: list[Result], backend: str, scenario: str, contender: str) -> Result:
    for result in results:
        if (result.backend, result.scenario, result.contender) == (backend, scenario, contender):
            return result
    raise LookupError(contender)


def ratio(results: list[Result], result: Result, reference: str) -> float:
    """*result* against *reference* of the same scenario: the median of the ratios within
    each repetition, where both ran back to back (a machine's slow spells cancel out)."""
    base = found(results, result.backend, result.scenario, reference)
    if len(base.rates) != len(result.rates):
        return result.median / base.median
    paired = zip(result.rates, base.rates, strict=True)
    return statistics.median(mine / theirs for mine, theirs in paired)


# -- invoices: a transaction that numbers a row and commits ------------------------------


def django_setup(url: sa.URL) -> None:
    """Configure Django in this process against the database at *url* (once)."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    engines = {
        "postgresql": "django.db.backends.postgresql",
        "mysql": "django.db.backends.mysql",
        "sqlite": "django.db.backends.sqlite3",
    }
    backend = url.get_backend_name()
    if backend == "mysql":
        import pymysql

        pymysql.install_as_MySQLdb()
    database = {
        "ENGINE": engines[backend],
        "NAME": url.database,
        "USER": url.username or "",
        "PASSWORD": url.password or "",
        "HOST": url.host or "",
        "PORT": str(url.port or ""),
    }
    if backend == "sqlite":
        # Writers take the write lock at BEGIN and wait for it, as the library's callers do
        # (pysqlite's deferred BEGIN made django-sequences fail with "database is locked").
        database["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 60}
    settings.configure(
        DATABASES={"default": database},
        INSTALLED_APPS=["sequences", "benchmarks.djapp"],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()


def django_transactions(url: sa.URL) -> Run:
    django_setup(url)
    from django.db import transaction
    from sequences import get_next_value

    from benchmarks.djapp.models import Invoice

    def run(n: int) -> None:
        for _ in range(n):
            with transaction.atomic():
                Invoice.objects.create(number=get_next_value("bench-django"))

    return run


def invoice_contenders(
    engine: Engine, floor: list[tuple[str, Any]]
) -> dict[str, Callable[[], Run]]:
    """The contenders of the invoices scenarios, built lazily (also in worker processes)."""
    url = engine.url

    def library(kind: str, how: str) -> Run:
        with engine.begin() as connection:
            found = mortar_seq.get_sequence("bench-table", connection)

        def one(session: Session | sa.Connection) -> None:
            if how == "next":
                session.execute(INSERT, {"value": found.next(session)})
            else:
                found.insert(session, rows, {}, column="value")

        def run(n: int) -> None:
            if kind == "session":
                with Session(engine) as session:
                    for _ in range(n):
                        with session.begin():
                            one(session)
            else:
                with engine.connect() as connection:
                    for _ in range(n):
                        with connection.begin():
                            one(connection)

        return run

    def retried() -> Run:
        """seq.insert on a Connection through run_in_transaction: its commit marker's cost."""
        with engine.begin() as connection:
            found = mortar_seq.get_sequence("bench-table", connection)

        def one(connection: sa.Connection) -> None:
            found.insert(connection, rows, {}, column="value")

        def run(n: int) -> None:
            for _ in range(n):
                mortar_seq.run_in_transaction(engine, one)

        return run

    def orm_default() -> Run:
        def run(n: int) -> None:
            with Session(engine) as session:
                for _ in range(n):
                    with session.begin():
                        session.add(BenchInvoice())

        return run

    return {
        "django-sequences": lambda: django_transactions(url),
        "SQLAlchemy floor, Session": lambda: core_transactions(engine, "bench-core", "session"),
        "SQLAlchemy floor, Connection": lambda: core_transactions(
            engine, "bench-core", "connection"
        ),
        "raw driver, 2 statements": lambda: raw_transactions(engine, floor),
        "next()+insert, Session": lambda: library("session", "next"),
        "next()+insert, Connection": lambda: library("connection", "next"),
        "seq.insert, Session": lambda: library("session", "insert"),
        "seq.insert, Connection": lambda: library("connection", "insert"),
        "seq.default (ORM)": orm_default,
        "run_in_transaction(seq.insert)": retried,
    }


def _invoice_worker(
    url: str, contender: str, floor: list[tuple[str, Any]], n: int, start: Any, done: Any
) -> None:
    engine = sa.create_engine(url)
    run = invoice_contenders(engine, floor)[contender]()
    run(1)  # warm up: connect, compile
    start.wait()
    run(n)
    done.put(n)
    engine.dispose()


def bench_invoices(backend: str, engine: Engine, quick: bool) -> list[Result]:
    repetitions = 3 if quick else 9
    transactions = 100 if quick else 240
    results: list[Result] = []
    mortar_seq.create_tables(engine)
    bench.create_all(engine)
    with engine.begin() as connection:
        for name in ("bench-table", "bench-core", "bench-orm"):
            mortar_seq.register_sequence(name, connection)
        mortar_seq.get_next_value(connection, "bench-core")  # the floor's UPDATE needs a value
    django_setup(engine.url)
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)
    floor_run = core_transactions(engine, "bench-core", "connection")
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if not statement.startswith(("BEGIN", "COMMIT")):
            sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    floor_run(1)
    sa.event.remove(engine, "before_cursor_execute", record)
    floor = sent[:]
    makers = invoice_contenders(engine, floor)
    contenders = {name: make() for name, make in makers.items()}
    counts = {
        name: statements_per_value(engine, contenders[name], 20)
        for name in contenders
        if name != "django-sequences"
    }
    add = results.append
    for contender, rates in measure(contenders, transactions, repetitions).items():
        add(Result(backend, "invoices: 1 worker", contender, rates, counts.get(contender)))

    url = engine.url.render_as_string(hide_password=False)
    four: dict[str, list[float]] = {}
    for repetition in range(repetitions):
        for contender in rotated(makers, repetition):
            timed = in_processes(url, contender, floor, 4, _invoice_worker)
            four.setdefault(contender, []).append(transactions * 2 / timed(transactions * 2))
    for contender, rates in four.items():
        add(Result(backend, "invoices: 4 workers", contender, rates))

    if mortar_seq.db.dialects.modifies_in_cte(engine.dialect):
        add_bulk(backend, engine, quick, results)
    return results


def add_bulk(backend: str, engine: Engine, quick: bool, results: list[Result]) -> None:
    """insert_many(1000) against one raw multi-row INSERT of 1000 numbered rows."""
    with engine.begin() as connection:
        seq = mortar_seq.get_sequence("bench-table", connection)
    batch = [{}] * 1000
    values = ", ".join(["(%s)"] * 1000)
    statement = f"INSERT INTO bench_rows (value) VALUES {values}"

    def library(n: int) -> None:
        with engine.connect() as connection:
            for _ in range(n // 1000):
                seq.insert_many(connection, rows, batch, column="value")
                connection.commit()

    def raw(n: int) -> None:
        connection = engine.raw_connection()
        try:
            cursor = connection.driver_connection.cursor()
            for k in range(n // 1000):
                cursor.execute(statement, list(range(k * 1000, k * 1000 + 1000)))
                connection.driver_connection.commit()
        finally:
            connection.close()

    rates = measure(
        {"insert_many(1000)": library, "raw 1-statement bulk": raw},
        10000 if quick else 40000,
        3 if quick else 5,
    )
    for contender, measured in rates.items():
        results.append(Result(backend, "bulk: 1000 rows", contender, measured))


# -- the report ------------------------------------------------------------------------

# (scenario, library contender) -> (reference contender, target ratio)
TARGETS = {
    ("table: 1 worker", "library, Session"): ("SQLAlchemy Core, Session", 0.95),
    ("table: 1 worker", "library, Connection"): ("SQLAlchemy Core, Connection", 0.95),
    ("table: 4 workers", "library, Session"): ("SQLAlchemy Core, Session", 0.95),
    ("table: 4 workers", "library, Connection"): ("SQLAlchemy Core, Connection", 0.95),
    ("native: next()", "library next()"): ("raw nextval", 0.7),
    ("native: next_many(1000)", "library next_many(1000)"): ("raw set-returning", 0.5),
}
# The goals of issue 12, for the invoices scenarios: (library, reference, target ratio).
INVOICE_TARGETS: list[tuple[str, str, float | None, str | None]] = [
    ("next()+insert, Session", "SQLAlchemy floor, Session", 0.95, None),
    ("next()+insert, Connection", "SQLAlchemy floor, Connection", 0.95, None),
    ("seq.insert, Connection", "django-sequences", 1.5, "postgresql"),
    ("seq.insert, Connection", "django-sequences", 1.2, "mariadb"),
    ("seq.insert, Connection", "django-sequences", 1.2, "sqlite"),
    ("seq.insert, Session", "django-sequences", 1.5, "postgresql"),
    ("seq.insert, Session", "django-sequences", 1.2, "mariadb"),
    ("seq.insert, Session", "django-sequences", 1.2, "sqlite"),
    ("seq.insert, Connection", "raw driver, 2 statements", 1.0, "postgresql"),
    ("seq.default (ORM)", "django-sequences", 1.0, None),
    # What the retry helper (its commit marker, one INSERT) costs: measured, no goal.
    ("run_in_transaction(seq.insert)", "seq.insert, Connection", None, None),
]
RAW_TARGETS = {
    ("table: 1 worker", "library, Connection"): 0.8,
    ("table: 4 workers", "library, Connection"): 0.8,
}


def report(results: list[Result]) -> str:
    lines = [
        f"{'backend':<11} {'scenario':<24} {'contender':<30} {'median/s':>10} "
        f"{'min/s':>10} {'max/s':>10} {'stmts/val':>9}  ratio (target)",
    ]
    for result in results:
        ratios: list[str] = []
        target = TARGETS.get((result.scenario, result.contender))
        if target is not None:
            ratios.append(f"{ratio(results, result, target[0]):.2f}x {target[0]} (>= {target[1]})")
        raw_target = RAW_TARGETS.get((result.scenario, result.contender))
        if raw_target is not None:
            raw = ratio(results, result, "raw driver")
            ratios.append(f"{raw:.2f}x raw driver (>= {raw_target})")
        if result.scenario == "pooled: next()" and result.contender == "library next()":
            reference = next(
                r
                for r in results
                if r.backend == result.backend and r.contender.startswith("reference: ")
            )
            ratios.append(
                f"{result.median / reference.median:.0f}x {reference.contender[11:]} (>= 50)"
            )
        if result.scenario.startswith("invoices"):
            for library, reference, goal, only in INVOICE_TARGETS:
                if result.contender == library and only in (None, result.backend):
                    against = ratio(results, result, reference)
                    wanted = "" if goal is None else f" (>= {goal})"
                    ratios.append(f"{against:.2f}x {reference}{wanted}")
        if result.scenario == "bulk: 1000 rows" and result.contender == "insert_many(1000)":
            bulk = ratio(results, result, "raw 1-statement bulk")
            ratios.append(f"{bulk:.2f}x raw 1-statement bulk (>= 0.5)")
        if result.contender.startswith("reference: "):
            continue
        statements = "" if result.statements is None else f"{result.statements:.3f}"
        lines.append(
            f"{result.backend:<11} {result.scenario:<24} {result.contender:<30} "
            f"{result.median:>10.0f} {min(result.rates):>10.0f} {max(result.rates):>10.0f} "
            f"{statements:>9}  {'; '.join(ratios)}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer values and repetitions")
    parser.add_argument("--backends", default="sqlite,postgresql,mariadb")
    parser.add_argument("--only", choices=["invoices", "sequences"], help="one group of scenarios")
    args = parser.parse_args()
    backends = args.backends.split(",")
    if len(backends) > 1:
        # Django is configured once per process: one process per backend.
        for backend in backends:
            argv = [sys.executable, __file__, "--backends", backend]
            argv += ["--quick"] if args.quick else []
            argv += ["--only", args.only] if args.only else []
            subprocess.run(argv, check=False)
        return 0
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        for backend in args.backends.split(","):
            try:
                database = stack.enter_context(fresh_database(backend, Path(folder)))
            except Unreachable as exc:
                print(f"skipping {backend}: {exc}", file=sys.stderr)
                continue
            engine = database.engine()
            print(f"measuring {backend} ...", file=sys.stderr)
            if args.only != "sequences":
                results.extend(bench_invoices(backend, engine, args.quick))
            if args.only != "invoices":
                results.extend(bench_backend(backend, engine, args.quick))
            engine.dispose()
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
