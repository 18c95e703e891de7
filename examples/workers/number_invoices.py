"""Worker processes forked from a script that made the engine first (as Celery's prefork
pool, gunicorn or multiprocessing do): each numbers invoices, and the script audits them.

    python number_invoices.py URL [WORKERS] [INVOICES_EACH]
"""

from __future__ import annotations

import multiprocessing
import os
import sys

import sqlalchemy as sa

import mortar_seq

metadata = sa.MetaData()
invoice = sa.Table(
    "invoice",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.BigInteger, unique=True, nullable=False),
    sa.Column("worker", sa.Integer, nullable=False),
)


def work(engine: sa.Engine, count: int) -> None:
    # The child inherited the pool with the parent's connections in it; two processes on one
    # connection mix their traffic. dispose(close=False) gives this process a new, empty pool
    # and leaves the parent's connections to the parent. (SQLAlchemy's "Using Connection Pools
    # with Multiprocessing or os.fork()"; under Celery, call it from worker_process_init.)
    engine.dispose(close=False)
    sequence = mortar_seq.get_sequence("invoice")
    for _ in range(count):
        mortar_seq.run_in_transaction(
            engine,
            lambda connection: sequence.insert(
                connection, invoice, {"worker": os.getpid()}, column="number"
            ),
        )


def main(url: str, workers: int = 4, each: int = 25) -> int:
    engine = sa.create_engine(url)
    mortar_seq.create_tables(engine)  # or the shipped Alembic migrations
    metadata.create_all(engine)
    with engine.begin() as connection:
        mortar_seq.register_sequence("invoice", connection)

    fork = multiprocessing.get_context("fork")
    processes = [fork.Process(target=work, args=(engine, each)) for _ in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()

    with engine.connect() as connection:
        audit = mortar_seq.audit(connection, invoice.c.number, start=1)
    engine.dispose()
    print(audit)
    failed = any(process.exitcode for process in processes)
    return 0 if audit.clean and not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], *map(int, sys.argv[2:])))
