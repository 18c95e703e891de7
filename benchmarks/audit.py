"""Time audit() over a PostgreSQL column of 1 million and 10 million rows, and its memory.

    python benchmarks/audit.py [--rows 1000000,10000000] [--explain]

A fresh database (as in the tests; MORTAR_SEQ_TEST_POSTGRESQL applies) gets a table
filled by generate_series, with a few planted gaps and duplicates; the script checks that
audit() finds exactly those, and prints the seconds it took and the Python process's peak
resident memory (ru_maxrss) before and after: the rows stay in the database.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mortar_seq.admin.audit import _findings, audit
from tests.databases import fresh_database

bench = sa.MetaData()
invoices = sa.Table(
    "bench_invoice",
    bench,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("number", sa.BigInteger),
)

# Planted: (what, value) — a missing value is deleted, a duplicated one inserted again.
MISSING = (1, 500, 501, 502, 777_777)  # at the start, a run of three, one alone
DOUBLED = (2, 4, 900_000)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def fill(connection: sa.Connection, rows: int) -> None:
    series = sa.func.generate_series(1, rows).table_valued("value").render_derived()
    connection.execute(
        invoices.insert().from_select(["id", "number"], sa.select(series.c.value, series.c.value))
    )
    missing = [value for value in MISSING if value <= rows] + [rows]  # the end, too
    connection.execute(invoices.delete().where(invoices.c.number.in_(missing)))
    connection.execute(
        invoices.insert(),
        [{"id": rows + i + 1, "number": value} for i, value in enumerate(DOUBLED)],
    )
    connection.exec_driver_sql("ANALYZE bench_invoice")


def measure(engine: sa.Engine, rows: int, explain: bool) -> None:
    with engine.begin() as connection:
        began = time.perf_counter()
        fill(connection, rows)
        filled = time.perf_counter() - began
    before = peak_mib()
    with engine.connect() as connection:
        if explain:
            statement = _findings(invoices.c.number, None, 1, 1)
            compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
            for line in connection.exec_driver_sql(f"EXPLAIN ANALYZE {compiled}").scalars():
                print(line, file=sys.stderr)
        began = time.perf_counter()
        found = audit(connection, invoices.c.number, start=1)
        seconds = time.perf_counter() - began
    after = peak_mib()
    expected_gaps = [range(1, 2), range(500, 503), range(777_777, 777_778)]
    assert found.gaps == [gap for gap in expected_gaps if gap.stop <= rows], found
    assert found.duplicates == {value: 2 for value in DOUBLED if value < rows}, found
    assert (found.count, found.first, found.last) == (rows - 6 + 3, 2, rows - 1), found
    print(
        f"{rows:>12,} rows  filled in {filled:6.1f} s  audit() {seconds:6.2f} s  "
        f"peak RSS {before:6.1f} MiB before, {after:6.1f} MiB after  ({len(found.gaps)} gaps, "
        f"{len(found.duplicates)} duplicates)"
    )
    with engine.begin() as connection:
        connection.execute(invoices.delete())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000", help="comma-separated sizes")
    parser.add_argument("--explain", action="store_true", help="print PostgreSQL's plan")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        fresh_database("postgresql", Path(folder)) as database,
    ):
        engine = database.engine()
        bench.create_all(engine)
        for rows in (int(size) for size in args.rows.split(",")):
            measure(engine, rows, args.explain)
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
