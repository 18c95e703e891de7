"""Time the ``mortar-seq`` command from start to exit: --version, --help, last and next.

    python benchmarks/cli_startup.py [--runs 15] [--backends sqlite,postgresql]

Each call is a new process (the console script in this interpreter's folder), timed from
the parent with a wall clock: interpreter start, imports, connecting, the work and exit.
``last`` and ``next`` run against a sequence made by ``create`` in a fresh database (as in
the tests; MORTAR_SEQ_TEST_POSTGRESQL applies): the embedded SQLite file of the default
URL, in a temporary folder, and PostgreSQL through ``--url``. Every command runs once
unmeasured, then ``--runs`` times, interleaved; the table shows the median, min and max in
milliseconds of wall clock, and the median CPU time (user + system, as the kernel counted
it for the process: less disturbed by other work on the machine). Goals: --version and
--help under 150 ms, last and next under 300 ms, in wall-clock time.
``python -X importtime -m mortar_seq --version`` shows where the time goes.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.databases import fresh_database

SCRIPT = Path(sys.executable).with_name("mortar-seq")
GOALS_MS = {"--version": 150, "--help": 150, "last": 300, "next": 300}


def cpu_of_children() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(argv: list[str], folder: Path, env: dict[str, str]) -> tuple[float, float]:
    """Seconds one ``mortar-seq`` process took from start to exit, and its CPU seconds."""
    cpu, began = cpu_of_children(), time.perf_counter()
    subprocess.run([str(SCRIPT), *argv], cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began, cpu_of_children() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--backends", default="sqlite,postgresql")
    options = parser.parse_args()
    env = {key: value for key, value in os.environ.items() if key != "MORTAR_SEQ_URL"}
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        commands: dict[str, list[str]] = {"--version": ["--version"], "--help": ["--help"]}
        for backend in options.backends.split(","):
            if backend == "sqlite":
                url = []  # the default URL: mortar_seq.sqlite in the current folder
            else:
                database = stack.enter_context(fresh_database(backend, folder))
                url = ["--url", database.url.render_as_string(hide_password=False)]
            timed([*url, "create", "bench"], folder, env)
            commands[f"last ({backend})"] = [*url, "last", "bench"]
            commands[f"next ({backend})"] = [*url, "next", "bench"]
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():
            timed(argv, folder, env)  # warm up: the page cache, .pyc files
        for _ in range(options.runs):
            for name, argv in commands.items():
                wall, cpu = timed(argv, folder, env)
                walls[name].append(wall * 1000)
                cpus[name].append(cpu * 1000)
    print(f"mortar-seq, {options.runs} runs each (ms; load average {os.getloadavg()[0]:.2f})")
    print(f"{'command':<20}{'median':>8}{'min':>8}{'max':>8}{'CPU':>8}{'goal':>8}")
    for name, times in walls.items():
        goal = GOALS_MS[name.split()[0]]
        print(
            f"{name:<20}{statistics.median(times):>8.0f}{min(times):>8.0f}"
            f"{max(times):>8.0f}{statistics.median(cpus[name]):>8.0f}{'< ' + str(goal):>8}"
        )


if __name__ == "__main__":
    main()
