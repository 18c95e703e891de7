"""What the command line prints: values a block of lines at a time, and the listing."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..admin.audit import Audit

# Lines joined into one write: fast output without holding much at once.
_LINES_PER_WRITE = 10_000
# How often the progress line is drawn, the first time included: a command done sooner
# shows none.
PROGRESS_SECONDS = 0.5


def _nothing(count: int) -> None:
    pass


def write_lines(values: Iterable[object]) -> None:
    """Print *values* one per line, iterating lazily (a range of millions costs nothing)."""
    remaining = iter(values)
    while block := list(islice(remaining, _LINES_PER_WRITE)):
        sys.stdout.write("\n".join(map(str, block)) + "\n")


@contextmanager
def json_array(
    as_json: bool, written: Callable[[int], None] = _nothing
) -> Iterator[Callable[[Iterable[object]], None]]:
    """Yield a writer of values: lines, or (*as_json*) one JSON array written as it goes,
    so that millions of values are never held at once; *written* is told how many after
    each block."""
    if not as_json:

        def lines(values: Iterable[object]) -> None:
            remaining = iter(values)
            while block := list(islice(remaining, _LINES_PER_WRITE)):
                write_lines(block)
                written(len(block))

        yield lines
        return
    sys.stdout.write("[")
    first = True

    def write(values: Iterable[object]) -> None:
        nonlocal first
        remaining = iter(values)
        while block := list(islice(remaining, _LINES_PER_WRITE)):
            sys.stdout.write(("" if first else ",\n") + ",\n".join(map(json.dumps, block)))
            first = False
            written(len(block))

    yield write
    sys.stdout.write("]\n")


class Progress:
    """How far a long command is: *done* of *total* (None: unknown), counted by `add`."""

    def __init__(self, what: str, total: int | None) -> None:
        self.what, self.total, self.done = what, total, 0
        self.started = time.monotonic()

    def add(self, count: int) -> None:
        self.done += count

    def line(self) -> str:
        seconds = f"{time.monotonic() - self.started:.0f} s"
        if self.total is None:
            return f"{self.what}: {seconds}"
        return f"{self.what}: {self.done:,} of {self.total:,} ({seconds})"


@contextmanager
def progress(what: str, total: int | None = None, *, shown: bool = True) -> Iterator[Progress]:
    """Yield a `Progress` drawn as one line on stderr, redrawn every half second and erased
    at the end; only where stderr is a terminal (and *shown*): scripts see nothing.

    Drawn by a thread of its own, so that a command waiting on one long statement (an
    audit, a lock) shows it too.
    """
    counted = Progress(what, total)
    if not (shown and sys.stderr.isatty()):
        yield counted
        return
    stop = threading.Event()
    drawn = 0  # the width of the line on the terminal

    def draw() -> None:
        nonlocal drawn
        while not stop.wait(PROGRESS_SECONDS):
            text = counted.line()[: _width() - 1]
            sys.stderr.write("\r" + text.ljust(drawn))
            sys.stderr.flush()
            drawn = max(drawn, len(text))

    drawer = threading.Thread(target=draw, name="mortar-seq progress", daemon=True)
    drawer.start()
    try:
        yield counted
    finally:
        stop.set()
        drawer.join()
        if drawn:
            sys.stderr.write("\r" + " " * drawn + "\r")
            sys.stderr.flush()


def _width() -> int:
    try:
        columns = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        columns = 0
    return columns or 80  # a new pseudo-terminal says 0


def print_json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def print_listing(entries: list[dict[str, Any]], *, as_json: bool) -> None:
    """Print what ``list`` found: a line per name, or one JSON array."""
    if as_json:
        print_json(entries)
        return
    for entry in entries:
        settings = " ".join(
            f"{key}={value}" for key, value in entry["settings"].items() if value is not None
        )
        if entry["pattern"] is None:
            last = "" if entry["last"] is None else entry["last"]
            described = f"last={last}"
        else:
            described = f"pattern={entry['pattern']}"
        print(f"{entry['name']}\t{entry['kind']}\t{settings}\t{described}")


def print_audit(found: Audit, *, as_json: bool = False) -> None:
    """Print what ``audit`` found: one ``what<TAB>value`` line each, gaps as first..last;
    or one JSON object (gaps as [first, last], duplicates as value: rows)."""
    if as_json:
        print_json(
            {
                "count": found.count,
                "first": found.first,
                "last": found.last,
                "gaps": [[gap.start, gap[-1]] for gap in found.gaps],
                "duplicates": {str(value): rows for value, rows in found.duplicates.items()},
                "off_series": list(found.off_step),
                "clean": found.clean,
            }
        )
        return
    print(f"count\t{found.count}")
    print(f"first\t{'' if found.first is None else found.first}")
    print(f"last\t{'' if found.last is None else found.last}")
    for gap in found.gaps:
        print(f"gap\t{gap.start}..{gap[-1]}")
    for value, rows in found.duplicates.items():
        print(f"duplicate\t{value}\t{rows} rows")
    for value in found.off_step:
        print(f"off-series\t{value}")
