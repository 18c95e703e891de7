"""Throughput on a private 3-node Galera cluster: writers on 1 node against writers on 3.

    python benchmarks/cluster.py [--seconds 5] [--threads 6]

Starts the cluster the tests use (tests/galera.py: loopback ports, a temporary folder),
then for each layout runs *threads* writer threads for *seconds*, each committing one
value per transaction with mortar_seq.run_in_transaction, and prints committed values per
second and retries per committed value: gapless on one shared row, gapless on one row per
thread (sharded by series), and pooled (block=100).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mortar_seq
from mortar_seq import PooledSequence, get_sequence, register_sequence, run_in_transaction
from tests.galera import galera_cluster


def measure(engines: list[sa.Engine], name_of: Any, seconds: float) -> tuple[float, float]:
    """Committed values per second and retries per committed value."""
    stop = time.monotonic() + seconds
    done, tries = [0] * len(engines), [0] * len(engines)

    def writer(index: int) -> None:
        engine, name = engines[index], name_of(index)

        def work(session: Any) -> int:
            tries[index] += 1
            return int(get_sequence(name, session).next(session))

        while time.monotonic() < stop:
            run_in_transaction(engine, work, timeout=60)
            done[index] += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(len(engines))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    committed = sum(done)
    return committed / (time.monotonic() - started), (sum(tries) - committed) / committed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--threads", type=int, default=6)
    args = parser.parse_args()
    with galera_cluster() as cluster:
        nodes = [sa.create_engine(node.url(), pool_size=args.threads) for node in cluster.nodes]
        mortar_seq.create_tables(nodes[0])
        with nodes[0].begin() as connection:
            register_sequence("shared", connection)
            for n in range(args.threads):
                register_sequence(f"series{n}", connection)
            register_sequence("pooled", connection, PooledSequence(block=100))
        kinds = {
            "gapless, one series": lambda n: "shared",
            "gapless, a series per writer": lambda n: f"series{n}",
            "pooled (block=100)": lambda n: "pooled",
        }
        print(f"{args.threads} writer threads, {args.seconds} s each")
        print(f"{'sequence':30} {'layout':12} {'values/s':>9} {'retries/value':>14}")
        for kind, name_of in kinds.items():
            for layout, spread in (("1 node", 1), ("3 nodes", 3)):
                engines = [nodes[n % spread] for n in range(args.threads)]
                rate, retries = measure(engines, name_of, args.seconds)
                print(f"{kind:30} {layout:12} {rate:9.0f} {retries:14.2f}")
        for engine in nodes:
            engine.dispose()


if __name__ == "__main__":
    main()
