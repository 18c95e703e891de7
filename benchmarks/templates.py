"""Benchmark templates as their counter table grows: does a call cost the same with 10 keys
as with a million?

    python benchmarks/templates.py [--sizes 10,10000,100000,1000000] [--memory-keys 100000]

PostgreSQL only (the test URL variables apply), in a database of its own, dropped at the
end. The counter table is filled with one ``INSERT ... SELECT generate_series``. Each
figure is the median time of one call over several batches, in microseconds, with its
ratio to the smallest size; the goal is a flat row (every ratio within 1.5):

- child next(): a child template's ``next()``, whose parent value must have been issued
  (the parent has that many keys);
- first use: ``next()`` of a key the template has never used (it has that many keys);
- steady next(): ``next()`` of a key already used (the template has that many keys);
- memory: the peak resident size of a process that used that many keys (VmHWM: Linux's
  ru_maxrss keeps its parent's peak).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mortar_seq
from tests.databases import fresh_database

BATCHES = 5
MIN_BATCH_SECONDS = 0.2


def per_call(call: Callable[[], object], *, budget: float = MIN_BATCH_SECONDS) -> float:
    """Median microseconds per call over BATCHES batches of at least *budget* seconds each."""
    call()  # warm up: compile, connect
    figures = []
    for _ in range(BATCHES):
        calls, began = 0, time.perf_counter()
        while True:
            call()
            calls += 1
            elapsed = time.perf_counter() - began
            if elapsed >= budget:
                break
        figures.append(elapsed / calls * 1e6)
    return statistics.median(figures)


def fill(engine: Engine, name: str, pattern: str, size: int) -> None:
    """Give template *name* *size* counter keys at once: ``pattern`` with ``%s`` the number."""
    prefix, suffix = pattern.split("%s")
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM mortar_seq_counter WHERE name = :n"), {"n": name})
        connection.execute(
            sa.text(
                "INSERT INTO mortar_seq_counter (name, key, value) "
                "SELECT :n, :p || i || :s, 5 FROM generate_series(1, :size) AS i"
            ),
            {"n": name, "p": prefix, "s": suffix, "size": size},
        )
        connection.exec_driver_sql("ANALYZE mortar_seq_counter")


def child_next(engine: Engine, size: int) -> float:
    with engine.begin() as connection:
        mortar_seq.register_template("PL", "{year}: Playlist {counter}", connection)
        child = mortar_seq.register_template("AF", "{PL} > Audio File {counter:02d}", connection)
    fill(engine, "PL", "%s: Playlist {counter}", size)
    with engine.connect() as connection:
        value = f"{size // 2 + 1}: Playlist 3"
        child.next(connection, PL=value)  # its own counter exists: the parent check is timed
        connection.commit()

        def call() -> None:
            child.next(connection, PL=value)
            connection.rollback()

        return per_call(call)


def first_use(engine: Engine, size: int) -> float:
    with engine.begin() as connection:
        template = mortar_seq.register_template("FU", "{k}-{counter}", connection)
    fill(engine, "FU", "%s-{counter}", size)
    fresh = iter(range(10**9, 2 * 10**9))
    with engine.connect() as connection:

        def call() -> None:
            template.next(connection, k=next(fresh))
            connection.rollback()  # no commit: its fsync would be most of what is timed

        return per_call(call)


def steady_next(engine: Engine, size: int) -> float:
    with engine.begin() as connection:
        template = mortar_seq.register_template("ST", "{k}-{counter}", connection)
    fill(engine, "ST", "%s-{counter}", size)
    with engine.connect() as connection:
        key = size // 2 + 1
        template.next(connection, k=key)
        connection.commit()

        def call() -> None:
            template.next(connection, k=key)
            connection.rollback()

        return per_call(call)


def memory(url: str, keys: int) -> float:
    """Peak resident MiB of a new process that used *keys* keys of a template."""
    script = f"""
import sqlalchemy as sa, mortar_seq
engine = sa.create_engine({url!r})
with engine.begin() as connection:
    template = mortar_seq.register_template("MEM{keys}", "{{k}}-{{counter}}", connection)
with engine.connect() as connection:
    for k in range({keys}):
        template.next(connection, k=k)
        if k % 1000 == 999:
            connection.commit()
    connection.rollback()
# ru_maxrss would count the parent's peak too (Linux keeps it across fork and exec).
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root
    )
    return int(done.stdout.split()[-1]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,10000,100000,1000000")
    parser.add_argument("--memory-keys", default="10,100000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",") if size]
    scenarios = {"child next()": child_next, "first use": first_use, "steady next()": steady_next}
    rows: list[tuple[str, list[float]]] = []
    with (
        tempfile.TemporaryDirectory() as folder,
        fresh_database("postgresql", Path(folder)) as database,
    ):
        engine = database.engine()
        mortar_seq.create_tables(engine)
        for label, scenario in scenarios.items():
            figures = []
            for size in sizes:
                figures.append(scenario(engine, size))
                print(f"{label:15} {size:>9,} keys: {figures[-1]:10.1f} us", file=sys.stderr)
            if figures:
                rows.append((label, figures))
        url = database.url.render_as_string(hide_password=False)
        memory_keys = [int(keys) for keys in args.memory_keys.split(",") if keys]
        if memory_keys:
            rows.append(("memory (MiB)", [memory(url, keys) for keys in memory_keys]))
        engine.dispose()
    print(f"{'':15} " + " ".join(f"{size:>16,}" for size in sizes))
    for label, figures in rows:
        base = figures[0]
        cells = " ".join(f"{figure:9.1f} ({figure / base:4.1f}x)" for figure in figures)
        print(f"{label:15} {cells}")
    print(f"(memory columns: processes that used {args.memory_keys} keys)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
