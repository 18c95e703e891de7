"""Is ``next()`` slower than the hand-written floor under contention, or is it noise?

    pip install -e '.[bench]'
    python benchmarks/floor_contention.py [--backends postgresql,mariadb] [--pairs 5]
        [--workers 4] [--seconds 3]

The invoice scenario of ``benchmarks/run.py`` (a transaction takes a value from one hot
series, inserts a row and commits), on a Session and on a Connection, in N worker
processes for a window of S seconds each, three contenders in an order rotated each
repetition:

- the floor: hand-written Core, one ``UPDATE ... RETURNING`` (MariaDB: ``LAST_INSERT_ID``)
  and the INSERT (``run.core_transactions``);
- the floor again, a second measurement of the very same code: how far two identical runs
  differ here (the noise);
- the floor with guards: hand-written Core again, with the guards ``next()`` has and the
  floor lacks, bound as ``next()`` binds them (the first value when the counter holds none,
  the step, the 64-bit limit; on MariaDB the signed 64-bit round trip through
  ``LAST_INSERT_ID``): what the SQL costs, apart from the library's Python;
- ``next()``: ``seq.next()`` and the same INSERT (``run.library_transactions``).

For each it prints transactions per second, the workers' CPU time per transaction and the
time from sending the counter's UPDATE to the end of COMMIT (the series' lock is held
within it, after any wait for it); then per repetition the ratios ``next()`` / floor and
floor again / floor, with their medians and ranges. Values taken are checked afterwards:
each series' counter must equal the rows inserted with its values, none twice.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mortar_seq
from benchmarks.run import INSERT, bench, core_transactions, library_transactions, rotated, rows
from mortar_seq.model import Counter
from tests.databases import Unreachable, fresh_database

CONTENDERS = ("floor", "floor again", "floor with guards", "next()")
SERIES = {
    "floor": "floor",
    "floor again": "floor",
    "floor with guards": "guarded",
    "next()": "library",
}
WARM_UP = 20  # transactions per worker before the window: connect, compile


@dataclass
class Measured:
    rate: float  # transactions per second, all workers
    cpu_ms: float  # workers' CPU time per transaction
    held_ms: float  # median, from the counter's UPDATE sent to COMMIT returned


def _worker(url: str, contender: str, kind: str, seconds: float, start: Any, done: Any) -> None:
    try:
        _measure_in_worker(url, contender, kind, seconds, start, done)
    except BaseException:
        start.abort()  # the others stop waiting for this one
        done.put(traceback.format_exc())


def _measure_in_worker(
    url: str, contender: str, kind: str, seconds: float, start: Any, done: Any
) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        seq = mortar_seq.get_sequence(SERIES[contender], connection)
    if contender == "next()":
        run = library_transactions(engine, seq, kind)
    elif contender == "floor with guards":
        run = guarded_transactions(engine, SERIES[contender], kind)
    else:
        run = core_transactions(engine, SERIES[contender], kind)
    sent = 0.0
    held: list[float] = []

    def before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        nonlocal sent
        if statement.startswith("UPDATE"):
            sent = time.perf_counter()

    run(WARM_UP)
    sa.event.listen(engine, "before_cursor_execute", before)
    start.wait()
    began_cpu, end, count = time.process_time(), time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        run(1)
        held.append(time.perf_counter() - sent)
        count += 1
    done.put((count, time.process_time() - began_cpu, statistics.median(held)))
    engine.dispose()


def guarded_transactions(engine: Engine, name: str, kind: str) -> Callable[[int], None]:
    """One value per transaction as the floor takes it, with the guards of ``next()``."""
    counters = cast(sa.Table, Counter.__table__)
    value = counters.c.value
    guarded = sa.case(
        (value.is_(None), sa.bindparam("guard_first", type_=sa.BigInteger)),
        else_=value + sa.bindparam("guard_step", type_=sa.BigInteger),
    )
    where = sa.and_(
        counters.c.name == sa.bindparam("guard_name"),
        counters.c.key == sa.bindparam("guard_key"),
        sa.or_(value.is_(None), value <= sa.bindparam("guard_limit", type_=sa.BigInteger)),
    )
    returning = engine.dialect.update_returning
    bump: sa.Update = sa.update(counters).where(where)
    if returning:
        bump = bump.values(value=guarded).returning(value)
    else:
        unsigned = sa.func.last_insert_id(sa.cast(guarded, mysql.INTEGER(unsigned=True)))
        bump = bump.values(value=sa.cast(unsigned, sa.BigInteger))
    parameters = {
        "guard_first": 1,
        "guard_step": 1,
        "guard_name": name,
        "guard_key": "",
        "guard_limit": 2**63 - 2,  # the last value that leaves room for one more
    }

    def take(session: Session | sa.Connection) -> int:
        moved = cast(CursorResult[Any], session.execute(bump, parameters))
        if returning:
            return int(moved.scalar_one())
        taken = int(moved.lastrowid)  # the unsigned 64 bits: back to signed
        return taken - 2**64 if taken >= 2**63 else taken

    def run(n: int) -> None:
        with ExitStack() as stack:
            if kind == "session":
                owner: Session | sa.Connection = stack.enter_context(Session(engine))
            else:
                owner = stack.enter_context(engine.connect())
            for _ in range(n):
                with owner.begin():
                    owner.execute(INSERT, {"value": take(owner)})

    return run


def measure(url: str, contender: str, kind: str, workers: int, seconds: float) -> Measured:
    spawn = multiprocessing.get_context("spawn")
    start, done = spawn.Barrier(workers), spawn.Queue()
    processes = [
        spawn.Process(target=_worker, args=(url, contender, kind, seconds, start, done))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    each = [done.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    failed = [one for one in each if isinstance(one, str)]
    if failed:
        raise SystemExit(f"a worker failed:\n{failed[0]}")
    count = sum(one[0] for one in each)
    return Measured(
        rate=count / seconds,
        cpu_ms=sum(one[1] for one in each) / count * 1000,
        held_ms=statistics.median(one[2] for one in each) * 1000,
    )


def check(engine: Engine) -> None:
    """The stored values are each series' 1..N once each, N where its counter stands."""
    with engine.connect() as connection:
        stored = sorted(connection.scalars(sa.select(rows.c.value)))
        expected: list[int] = []
        for name in sorted(set(SERIES.values())):
            expected.extend(
                range(1, (mortar_seq.get_sequence(name, connection).last(connection) or 0) + 1)
            )
    if stored != sorted(expected):
        raise SystemExit(
            f"FAILED: {len(stored)} values stored, {len(expected)} taken, or not once each"
        )


def bench_backend(engine: Engine, workers: int, pairs: int, seconds: float) -> list[str]:
    mortar_seq.create_tables(engine)
    bench.create_all(engine)
    with engine.begin() as connection:
        for name in sorted(set(SERIES.values())):
            mortar_seq.register_sequence(name, connection)
        # The floors' UPDATE moves a counter that has a value: the library's first.
        for name in ("floor", "guarded"):
            connection.execute(INSERT, {"value": mortar_seq.get_next_value(connection, name)})
    url = engine.url.render_as_string(hide_password=False)
    said = []
    for kind in ("session", "connection"):
        measured: dict[str, list[Measured]] = {name: [] for name in CONTENDERS}
        for repetition in range(pairs):
            for contender in rotated(CONTENDERS, repetition):
                measured[contender].append(measure(url, contender, kind, workers, seconds))
        said.append(report(engine.dialect.name, kind, workers, measured))
    check(engine)
    return said


def report(backend: str, kind: str, workers: int, measured: dict[str, list[Measured]]) -> str:
    lines = [f"{backend}, {kind}, {workers} workers:"]
    for contender in CONTENDERS:
        runs = measured[contender]
        lines.append(
            f"  {contender:<17} {statistics.median(m.rate for m in runs):8.0f}/s"
            f"  CPU {statistics.median(m.cpu_ms for m in runs):.3f} ms/transaction"
            f"  UPDATE sent to COMMIT done {statistics.median(m.held_ms for m in runs):.2f} ms"
        )
    for name in ("floor again", "floor with guards", "next()"):
        ratios = [
            one.rate / floor.rate
            for one, floor in zip(measured[name], measured["floor"], strict=True)
        ]
        listed = " ".join(f"{r:.2f}" for r in ratios)
        lines.append(
            f"  {name} / floor: median {statistics.median(ratios):.2f}x,"
            f" {min(ratios):.2f} to {max(ratios):.2f} ({listed})"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="postgresql,mariadb")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=5, help="repetitions of the three")
    parser.add_argument("--seconds", type=float, default=3.0, help="each window")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backends.split(","):
            try:
                with fresh_database(backend, Path(folder)) as database:
                    engine = database.engine()
                    for text in bench_backend(engine, args.workers, args.pairs, args.seconds):
                        print(text, flush=True)
                    engine.dispose()
            except Unreachable as error:
                print(f"{backend}: skipped, {error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
