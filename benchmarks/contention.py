"""Benchmark numbering at commit against numbering first, on one hot series, under contention.

    pip install -e '.[bench]'
    python benchmarks/contention.py [--quick] [--backends postgresql,mariadb] [--seconds 3]
        [--workers 1,2,4,8] [--work-ms 0,10,30] [--repetitions 1] [--json FILE] [--chart FILE]
    python benchmarks/contention.py --report FILE.json [--chart FILE]   # tables, goals, chart again

Each transaction numbers an invoice, inserts it and 3 line rows, waits W ms (the client's
own work: ``time.sleep``) and commits. The contenders, one after the other in an order
rotated each repetition, each in N worker processes on one shared series:

- no numbering: the same rows, number NULL (the ceiling);
- django-sequences: ``get_next_value()`` first, then the rows, Django's ORM, in
  ``transaction.atomic()``;
- next() first: ``seq.next(session)`` first, then the rows (SQLAlchemy Core on a Session);
- at commit: ``seq.insert_at_commit()`` writes the invoice with its number NULL; the
  Session numbers it just before COMMIT.

Every transaction runs in ``mortar_seq.run_in_transaction`` (django-sequences' in the same
retry loop on ``worth_retrying``), which counts retries. Workers run without a pause; the
rate counts the commits that end within the measured window (after a warm-up), the
latency is the whole transaction's, retries included. Each point also reports, per
committed transaction, the workers' CPU time and the statements they sent (BEGIN and
COMMIT aside; Django's counted through ``connection.execute_wrapper``). Afterwards the
committed numbers of each numbered series must be exactly 1..N, N the commits the
workers counted: anything else stops the run.

The "two series" scenario numbers an invoice (with its lines) and a delivery note in each
transaction, in one order in half the workers and in the other order in the rest, with
4 workers and W = 10 ms: numbering first deadlocks; numbering at commit takes the series
in name order and must never retry.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mortar_seq
from benchmarks.run import django_setup, rotated
from tests.databases import Unreachable, fresh_database

CONTENDERS = ("no numbering", "django-sequences", "next() first", "at commit")
NUMBERED = CONTENDERS[1:]
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB"}
WARM_UP_SECONDS = 0.5
LINES = 3
CEILING_STYLE: dict[str, Any] = {"color": "0.55", "linestyle": "--"}

metadata = sa.MetaData()
invoices = sa.Table(
    "contention_invoice",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("series", sa.String(100), nullable=False),
    sa.Column("number", sa.BigInteger, nullable=True),  # NULL until COMMIT (at commit)
)
lines = sa.Table(
    "contention_line",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("invoice_id", sa.ForeignKey("contention_invoice.id"), nullable=False),
    sa.Column("amount", sa.Integer, nullable=False),
)
notes = sa.Table(
    "contention_note",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("series", sa.String(100), nullable=False),
    sa.Column("number", sa.BigInteger, nullable=True),
)


@dataclass(frozen=True)
class Task:
    """One worker's share of one measured point."""

    contender: str
    series: tuple[str, ...]  # the invoice's, then the delivery note's (two series)
    work: float  # seconds of client work before COMMIT
    start: float  # time.monotonic(), shared by the processes of one machine
    end: float
    flipped: bool  # number the delivery note first


@dataclass
class Measured:
    backend: str
    scenario: str
    work_ms: int
    workers: int
    contender: str
    repetition: int
    rate: float  # transactions committed per second in the window
    p50_ms: float
    p99_ms: float
    retries: int
    committed: int
    # Per committed transaction, all its workers together (absent from older reports):
    cpu_ms: float = float("nan")  # the workers' CPU time (the servers' not included)
    statements: float = float("nan")  # sent to the server, BEGIN and COMMIT not included


# -- one transaction, per contender ---------------------------------------------------


Transaction = Callable[[Task], int]  # runs one transaction, returns its retries

_sent = [0]  # statements this worker process sent, by either ORM
_kept = ExitStack()  # Django's statement counter, for the life of the process


def _count_statement(*_: Any) -> None:
    _sent[0] += 1


def sqlalchemy_transaction(engine: Engine) -> Transaction:
    make = sessionmaker(engine)
    sa.event.listen(engine, "before_cursor_execute", _count_statement)
    found: dict[str, mortar_seq.Sequence] = {}

    def sequence(session: Session, name: str) -> mortar_seq.Sequence:
        if name not in found:
            found[name] = mortar_seq.get_sequence(name, session)
        return found[name]

    def document(session: Session, contender: str, table: sa.Table, name: str) -> Any:
        if contender == "at commit":
            return sequence(session, name).insert_at_commit(
                session, table, {"series": name}, column="number"
            )[0]
        number = sequence(session, name).next(session) if contender == "next() first" else None
        row = {"series": name, "number": number}
        inserted: Any = session.execute(sa.insert(table), row)  # a CursorResult
        return inserted.inserted_primary_key[0]

    def run(task: Task) -> int:
        attempts = 0

        def work(session: Session) -> None:
            nonlocal attempts
            attempts += 1
            for table, name in documents(task):
                key = document(session, task.contender, table, name)
                if table is invoices:
                    amounts = [{"invoice_id": key, "amount": n} for n in range(LINES)]
                    session.execute(sa.insert(lines), amounts)
            if task.work:
                time.sleep(task.work)

        mortar_seq.run_in_transaction(make, work)
        return attempts - 1

    return run


def django_transaction(url: sa.URL) -> Transaction:
    django_setup(url)
    from django.db import connection, transaction
    from sequences import get_next_value

    from benchmarks.djapp.models import ContentionInvoice, ContentionLine, ContentionNote

    models: dict[sa.Table, Any] = {invoices: ContentionInvoice, notes: ContentionNote}

    def counted(execute: Callable[..., Any], *arguments: Any) -> Any:
        _count_statement()
        return execute(*arguments)

    # On for the worker's life: entered once (entering costs calls too), and kept, since
    # the wrapper goes when its context manager is garbage-collected.
    _kept.enter_context(connection.execute_wrapper(counted))

    def work(task: Task) -> None:
        with transaction.atomic():
            for table, name in documents(task):
                row = models[table].objects.create(series=name, number=get_next_value(name))
                if table is invoices:
                    amounts = [ContentionLine(invoice=row, amount=n) for n in range(LINES)]
                    ContentionLine.objects.bulk_create(amounts)
            if task.work:
                time.sleep(task.work)

    def run(task: Task) -> int:
        # run_in_transaction's loop, for Django: Django's errors carry the driver's as cause.
        began, attempt = time.monotonic(), 0
        while True:
            try:
                work(task)
                return attempt
            except Exception as error:
                cause = error.__cause__ or error
                if not mortar_seq.worth_retrying(cause) or time.monotonic() - began > 60:
                    raise
            time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
            attempt += 1

    return run


def documents(task: Task) -> list[tuple[sa.Table, str]]:
    listed = list(zip((invoices, notes), task.series, strict=False))
    return listed[::-1] if task.flipped else listed


# -- worker processes -----------------------------------------------------------------


def _worker(url: str, migrate: bool, tasks: Any, results: Any) -> None:
    try:
        engine = sa.create_engine(url)
        runs = {"django-sequences": django_transaction(engine.url)}
        if migrate:
            from django.core.management import call_command

            call_command("migrate", run_syncdb=True, verbosity=0)
        ours = sqlalchemy_transaction(engine)
        runs.update({name: ours for name in CONTENDERS if name != "django-sequences"})
        results.put(("ready", None))
        while (task := tasks.get()) is not None:
            results.put(("done", _measure(runs[task.contender], task)))
        engine.dispose()
    except BaseException:
        results.put(("error", traceback.format_exc()))


def _measure(run: Transaction, task: Task) -> tuple[int, int, list[float], float, int]:
    """Run transactions until the window ends; return (committed, retries, the latencies in
    seconds of those that ended within the window, CPU seconds, statements sent)."""
    committed = retries = 0
    latencies: list[float] = []
    cpu, sent = time.process_time(), _sent[0]
    while (began := time.monotonic()) < task.end:
        retries += run(task)
        ended = time.monotonic()
        committed += 1
        if task.start <= ended <= task.end:
            latencies.append(ended - began)
    return committed, retries, latencies, time.process_time() - cpu, _sent[0] - sent


class Workers:
    """Worker processes, started once per database: each configures Django for it."""

    def __init__(self, url: str, count: int) -> None:
        spawn = multiprocessing.get_context("spawn")
        self.results = spawn.Queue()
        self.queues = [spawn.Queue() for _ in range(count)]
        self.processes = []
        for index, queue in enumerate(self.queues):  # the first one alone creates Django's table
            process = spawn.Process(target=_worker, args=(url, index == 0, queue, self.results))
            process.start()
            self.processes.append(process)
            if index == 0:
                self._collect(1)
        self._collect(count - 1)

    def _collect(self, count: int) -> list[Any]:
        collected = []
        for _ in range(count):
            kind, value = self.results.get(timeout=600)
            if kind == "error":
                self.close()
                raise RuntimeError(f"a worker failed:\n{value}")
            collected.append(value)
        return collected

    def run(self, tasks: list[Task]) -> list[tuple[int, int, list[float], float, int]]:
        for queue, task in zip(self.queues, tasks, strict=False):
            queue.put(task)
        return self._collect(len(tasks))

    def close(self) -> None:
        for queue in self.queues:
            queue.put(None)
        for process in self.processes:
            process.join(60)


# -- measuring ------------------------------------------------------------------------


def point(
    engine: Engine,
    workers: Workers,
    label: tuple[str, str, int, int, str, int],
    seconds: float,
    two_series: bool,
) -> Measured:
    _, scenario, work_ms, count, contender, repetition = label
    prefix = f"{scenario}/{work_ms}/{count}/{contender}/{repetition}"
    series = (f"{prefix}/invoice", f"{prefix}/note") if two_series else (f"{prefix}/invoice",)
    if contender in ("next() first", "at commit"):
        with engine.begin() as connection:
            for name in series:
                mortar_seq.register_sequence(name, connection)
    start = time.monotonic() + 0.2 + WARM_UP_SECONDS  # 0.2 s to hand the tasks out
    tasks = [
        Task(contender, series, work_ms / 1000, start, start + seconds, two_series and n % 2 == 1)
        for n in range(count)
    ]
    done = workers.run(tasks)
    committed = sum(each[0] for each in done)
    latencies = sorted(latency for each in done for latency in each[2])
    check(engine, contender, series, committed)
    p50, p99 = percentiles(latencies)
    return Measured(
        *label,
        rate=len(latencies) / seconds,
        p50_ms=p50 * 1000,
        p99_ms=p99 * 1000,
        retries=sum(each[1] for each in done),
        committed=committed,
        cpu_ms=sum(each[3] for each in done) / max(committed, 1) * 1000,
        statements=sum(each[4] for each in done) / max(committed, 1),
    )


def percentiles(latencies: list[float]) -> tuple[float, float]:
    if len(latencies) < 2:
        return (latencies or [float("nan")])[0], (latencies or [float("nan")])[0]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49], cuts[98]


def check(engine: Engine, contender: str, series: tuple[str, ...], committed: int) -> None:
    """Fail the run unless each series stored *committed* rows numbered exactly 1..N."""
    for table, name in zip((invoices, notes), series, strict=False):
        with engine.connect() as connection:
            query = sa.select(table.c.number).where(table.c.series == name).order_by("number")
            numbers = list(connection.scalars(query))
        expected: list[int | None] = [None] * committed
        if contender in NUMBERED:
            expected = list(range(1, committed + 1))
        if numbers != expected:
            raise SystemExit(
                f"FAILED: {contender} committed {committed} transactions, but {name!r} stored "
                f"{len(numbers)} rows numbered {summary(numbers)}"
            )


def summary(numbers: list[Any]) -> str:
    if len(numbers) <= 10:
        return repr(numbers)
    return f"[{', '.join(map(repr, numbers[:5]))}, ..., {', '.join(map(repr, numbers[-5:]))}]"


def sweep(
    backend: str,
    engine: Engine,
    works: list[int],
    counts: list[int],
    seconds: float,
    repetitions: int,
) -> list[Measured]:
    mortar_seq.create_tables(engine)
    metadata.create_all(engine)
    url = engine.url.render_as_string(hide_password=False)
    workers = Workers(url, max([*counts, 4]))
    measured: list[Measured] = []
    try:
        for repetition in range(repetitions):
            for work_ms in works:
                for count in counts:
                    for contender in rotated(CONTENDERS, repetition + count):
                        label = (backend, "one series", work_ms, count, contender, repetition)
                        measured.append(point(engine, workers, label, seconds, False))
                        print(line(measured[-1]), file=sys.stderr)
            for contender in rotated(CONTENDERS, repetition):
                label = (backend, "two series", 10, 4, contender, repetition)
                measured.append(point(engine, workers, label, seconds, True))
                print(line(measured[-1]), file=sys.stderr)
    finally:
        workers.close()
    return measured


# -- the report -----------------------------------------------------------------------


def line(m: Measured) -> str:
    return (
        f"{NAMES[m.backend]:<10} {m.scenario:<10} W={m.work_ms:>2} ms {m.workers} workers "
        f"{m.contender:<16} {m.rate:>7.1f}/s  p50 {m.p50_ms:>6.1f} ms  p99 {m.p99_ms:>7.1f} ms  "
        f"retries {m.retries:>3}  committed {m.committed}  "
        f"CPU {m.cpu_ms:.2f} ms and {m.statements:.2f} statements per transaction"
    )


Key = tuple[str, str, int, int]  # backend, scenario, work_ms, workers


def grouped(measured: list[Measured]) -> dict[Key, dict[str, list[Measured]]]:
    points: dict[Key, dict[str, list[Measured]]] = {}
    for m in measured:
        key = (m.backend, m.scenario, m.work_ms, m.workers)
        points.setdefault(key, {}).setdefault(m.contender, []).append(m)
    return points


def rate(runs: dict[str, list[Measured]], contender: str) -> float:
    return statistics.median(m.rate for m in runs[contender])


def ratio(runs: dict[str, list[Measured]], contender: str, reference: str) -> float:
    """The median of the ratios within each repetition, where both ran back to back."""
    theirs = {m.repetition: m.rate for m in runs[reference]}
    return statistics.median(
        m.rate / theirs[m.repetition] if theirs[m.repetition] else float("inf")
        for m in runs[contender]
    )


def goals(measured: list[Measured]) -> list[str]:
    """The issue's goals, each with its figure and whether it is met."""
    said: list[str] = []

    def judge(what: str, figure: float, goal: float) -> None:
        verdict = "met" if figure >= goal else "NOT met"
        said.append(f"{what}: {figure:.2f}x (>= {goal}: {verdict})")

    for (backend, scenario, work_ms, count), runs in grouped(measured).items():
        where = f"{NAMES[backend]}, W = {work_ms} ms, {count} workers"
        if scenario == "two series":
            retries = sum(m.retries for m in runs["at commit"])
            verdict = "met" if retries == 0 else "NOT met"
            others = ", ".join(
                f"{c} {sum(m.retries for m in runs[c])}" for c in CONTENDERS if c != "at commit"
            )
            said.append(
                f"{NAMES[backend]}, two series, {count} workers: at commit retried {retries} "
                f"times (0: {verdict}); {others}"
            )
        elif work_ms >= 10 and count in (4, 8) and backend != "sqlite":
            judge(
                f"{where}: at commit vs no numbering", ratio(runs, "at commit", CONTENDERS[0]), 0.8
            )
            judge(
                f"{where}: at commit vs django-sequences",
                ratio(runs, "at commit", NUMBERED[0]),
                2.5,
            )
        elif work_ms == 0:
            goal = 1.0 if backend == "postgresql" else 0.85
            judge(
                f"{where}: at commit vs next() first", ratio(runs, "at commit", NUMBERED[1]), goal
            )
    return said


def text_table(measured: list[Measured]) -> str:
    out = [
        f"{'database':<10} {'scenario':<10} {'W ms':>4} {'workers':>7} {'contender':<16} "
        f"{'values/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'retries':>7}  vs ceiling  vs django"
        f"  CPU ms/tx  statements/tx"
    ]
    for (backend, scenario, work_ms, count), runs in grouped(measured).items():
        for contender in CONTENDERS:
            listed = runs[contender]
            out.append(
                f"{NAMES[backend]:<10} {scenario:<10} {work_ms:>4} {count:>7} {contender:<16} "
                f"{rate(runs, contender):>8.1f} "
                f"{statistics.median(m.p50_ms for m in listed):>7.1f} "
                f"{statistics.median(m.p99_ms for m in listed):>7.1f} "
                f"{sum(m.retries for m in listed):>7}  "
                f"{ratio(runs, contender, CONTENDERS[0]):>9.2f}x "
                f"{ratio(runs, contender, NUMBERED[0]):>9.2f}x "
                f"{statistics.median(m.cpu_ms for m in listed):>10.2f} "
                f"{statistics.median(m.statements for m in listed):>14.2f}"
            )
    return "\n".join(out)


def rst_table(measured: list[Measured]) -> str:
    """The docs' table: values/s of each contender, at commit's p50/p99 and ratios."""
    header = [
        "Database",
        "W ms",
        "workers",
        *(f"{c} /s" for c in CONTENDERS),
        "at commit p50 / p99 ms",
        "vs ceiling",
        "vs django-sequences",
        "vs next() first",
    ]
    body = []
    for (backend, scenario, work_ms, count), runs in grouped(measured).items():
        if scenario != "one series":
            continue
        ours = runs["at commit"]
        body.append(
            [
                NAMES[backend],
                str(work_ms),
                str(count),
                *(f"{rate(runs, c):.0f}" for c in CONTENDERS),
                f"{statistics.median(m.p50_ms for m in ours):.0f} / "
                f"{statistics.median(m.p99_ms for m in ours):.0f}",
                *(f"{ratio(runs, 'at commit', c):.2f}x" for c in CONTENDERS[:3]),
            ]
        )
    widths = [max(len(row[n]) for row in [header, *body]) for n in range(len(header))]
    rule = " ".join("=" * width for width in widths)
    rendered = [
        " ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in body
    ]
    head = " ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))
    return "\n".join([rule, head, rule, *(r.rstrip() for r in rendered), rule])


def markdown_table(measured: list[Measured]) -> str:
    """The README's table: W >= 10 ms, 4 and 8 workers, as the issue's."""
    out = [
        "| DB | W ms | workers | no numbering | django-sequences | next() first | at commit "
        "| at commit vs ceiling / django-sequences |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (backend, scenario, work_ms, count), runs in grouped(measured).items():
        if scenario != "one series" or work_ms < 10 or count not in (4, 8):
            continue
        rates = " | ".join(f"{rate(runs, c):.0f}/s" for c in CONTENDERS)
        ratios = (
            f"{ratio(runs, 'at commit', CONTENDERS[0]):.2f}x / "
            f"{ratio(runs, 'at commit', NUMBERED[0]):.2f}x"
        )
        out.append(f"| {NAMES[backend]} | {work_ms} | {count} | {rates} | {ratios} |")
    return "\n".join(out)


def chart(measured: list[Measured], path: Path) -> None:
    """values/s against workers, one panel per database and W, one line per contender."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "mortar_seq"  # the same figures give the same file
    points = grouped([m for m in measured if m.scenario == "one series"])
    backends = list(dict.fromkeys(key[0] for key in points))
    works = sorted({key[2] for key in points})
    figure, axes = plt.subplots(
        len(backends), len(works), figsize=(3.2 * len(works), 2.8 * len(backends)), squeeze=False
    )
    for row, backend in enumerate(backends):
        for column, work_ms in enumerate(works):
            axis = axes[row][column]
            counts = sorted(key[3] for key in points if key[0] == backend and key[2] == work_ms)
            for contender in CONTENDERS:
                figures = [
                    rate(points[backend, "one series", work_ms, c], contender) for c in counts
                ]
                style = CEILING_STYLE if contender == CONTENDERS[0] else {}
                axis.plot(counts, figures, marker="o", label=contender, **style)
            axis.set_xscale("log", base=2)
            axis.set_xticks(counts, [str(c) for c in counts])
            axis.set_ylim(bottom=0)
            axis.set_title(f"{NAMES[backend]}, W = {work_ms} ms", fontsize=10)
            axis.grid(alpha=0.3)
            if column == 0:
                axis.set_ylabel("values/s")
            if row == len(backends) - 1:
                axis.set_xlabel("worker processes")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="svg", metadata={"Date": None})
    plt.close(figure)


def report(measured: list[Measured], chart_path: Path | None) -> str:
    if chart_path is not None:
        chart(measured, chart_path)
    return "\n\n".join(
        [
            text_table(measured),
            "Goals:\n" + "\n".join(f"- {said}" for said in goals(measured)),
            "README table:\n\n" + markdown_table(measured),
            "docs table:\n\n" + rst_table(measured),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 2 workers, W = 0 and 10, 1 s")
    parser.add_argument("--backends", default="postgresql,mariadb")
    parser.add_argument("--workers", default="1,2,4,8", help="SQLite: at most 4")
    parser.add_argument("--work-ms", default="0,10,30")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured, per point")
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the measurements there")
    parser.add_argument("--report", type=Path, help="report the measurements of a --json file")
    parser.add_argument("--chart", type=Path, help="draw values/s against workers (SVG)")
    args = parser.parse_args()
    if args.report is not None:
        measured = [Measured(**m) for m in json.loads(args.report.read_text())]
        print(report(measured, args.chart))
        return 0
    counts = [1, 2] if args.quick else [int(n) for n in args.workers.split(",")]
    works = [0, 10] if args.quick else [int(n) for n in args.work_ms.split(",")]
    seconds = 1.0 if args.quick else args.seconds
    measured = []
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        for backend in args.backends.split(","):
            try:
                database = stack.enter_context(fresh_database(backend, Path(folder)))
            except Unreachable as exc:
                print(f"skipping {backend}: {exc}", file=sys.stderr)
                continue
            engine = database.engine()
            # SQLite's writers share one lock: more workers only queue.
            mine = [n for n in counts if n <= 4] if backend == "sqlite" else counts
            measured += sweep(backend, engine, works, mine, seconds, args.repetitions)
            engine.dispose()
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(m) for m in measured], indent=1))
    print(report(measured, args.chart))
    return 0


if __name__ == "__main__":
    sys.exit(main())
