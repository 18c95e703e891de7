"""What the command line prints: values a block of lines at a time, and the listing."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from itertools import islice
from typing import Any

from .auditing import Audit

# Lines joined into one write: fast output without holding much at once.
_LINES_PER_WRITE = 10_000


def write_lines(values: Iterable[object]) -> None:
    """Print *values* one per line, iterating lazily (a range of millions costs nothing)."""
    remaining = iter(values)
    while block := list(islice(remaining, _LINES_PER_WRITE)):
        sys.stdout.write("\n".join(map(str, block)) + "\n")


def print_listing(entries: list[dict[str, Any]], *, as_json: bool) -> None:
    """Print what ``list`` found: a line per name, or one JSON array."""
    if as_json:
        print(json.dumps(entries, indent=2, ensure_ascii=False))
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


def print_audit(found: Audit) -> None:
    """Print what ``audit`` found: one ``what<TAB>value`` line each, gaps as first..last."""
    print(f"count\t{found.count}")
    print(f"first\t{'' if found.first is None else found.first}")
    print(f"last\t{'' if found.last is None else found.last}")
    for gap in found.gaps:
        print(f"gap\t{gap.start}..{gap[-1]}")
    for value, rows in found.duplicates.items():
        print(f"duplicate\t{value}\t{rows} rows")
    for value in found.off_step:
        print(f"off-series\t{value}")
