"""What the command line prints: values a block of lines at a time, and the listing."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..admin.audit import Audit

# Lines joined into one write: fast output without holding much at once.
_LINES_PER_WRITE = 10_000


def write_lines(values: Iterable[object]) -> None:
    """Print *values* one per line, iterating lazily (a range of millions costs nothing)."""
    remaining = iter(values)
    while block := list(islice(remaining, _LINES_PER_WRITE)):
        sys.stdout.write("\n".join(map(str, block)) + "\n")


@contextmanager
def json_array(as_json: bool) -> Iterator[Callable[[Iterable[object]], None]]:
    """Yield a writer of values: lines, or (*as_json*) one JSON array written as it goes,
    so that millions of values are never held at once."""
    if not as_json:
        yield write_lines
        return
    sys.stdout.write("[")
    first = True

    def write(values: Iterable[object]) -> None:
        nonlocal first
        remaining = iter(values)
        while block := list(islice(remaining, _LINES_PER_WRITE)):
            sys.stdout.write(("" if first else ",\n") + ",\n".join(map(json.dumps, block)))
            first = False

    yield write
    sys.stdout.write("]\n")


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
