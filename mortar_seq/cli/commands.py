"""The command line's verbs, over the public functions; each in transactions of its own.

Nothing is printed before the transaction that took it has committed: an interrupted or
piped ``next`` may leave a gap (values committed, never printed), never a duplicate.
"""

from __future__ import annotations

import argparse
import collections.abc as abc
import datetime as dt
import sys
import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..definition import Definition, check_name
from ..errors import SequenceConfigError, SequenceError, TemplateError, UnknownSequence
from ..patterns.pattern import identifier
from ..registry import get_sequence, get_template, register_sequence, register_template
from ..sequence import Sequence
from ..storage import counter_keys, load, stored_names
from ..strategies import gapless, implementation, reaching
from ..template import Template
from .output import json_array, print_audit, print_json, print_listing, progress, write_lines

# audit, importing, delete and the dry runs import what only they use when they run: every
# other verb starts sooner (see benchmarks/cli_startup.py).

# How many values a native, pooled or template ``next`` takes and commits at once: what
# it holds in memory and how long it keeps a gapless counter locked are bounded by this.
CHUNK = 100_000


def create(engine: Engine, args: argparse.Namespace) -> None:
    impl = implementation(args.impl)  # a kind: built in, or from an entry point
    with engine.begin() as connection:
        _refuse_other_kind(connection, args.name, template=args.pattern is not None)
        if args.pattern is None:
            register_sequence(
                args.name, connection, impl, start=args.start, step=args.step, reset=args.reset
            )
            return
        if args.reset is not None:
            raise TemplateError("templates take no --reset")
        register_template(
            args.name, args.pattern, connection, start=args.start, step=args.step, impl=impl
        )


def take(engine: Engine, args: argparse.Namespace) -> None:
    keywords = _keywords(args.keywords)
    with engine.begin() as connection:
        template = _found(connection, args.name, args.keywords)
        sequence = None if template is not None else get_sequence(args.name, connection)

    def batch(connection: Connection, count: int) -> abc.Sequence[object]:
        if template is not None:
            return template.next_many(connection, count, nowait=False, **keywords)
        return get_sequence(args.name, connection).next_many(connection, count)

    if sequence is not None and _contiguous(sequence):
        # One statement however many values: a range, committed, then printed lazily.
        chunks: abc.Iterable[int] = [args.count]
    else:
        chunks = _chunks(args.count)
    # Where the values scroll by on the terminal, they show how far it is.
    shown = not sys.stdout.isatty()
    with (
        progress(f"mortar-seq next {args.name}", args.count, shown=shown) as counted,
        json_array(args.json, counted.add) as write,
    ):
        for count in chunks:
            with engine.begin() as connection:
                taken = batch(connection, count)
            write(taken)


def last(engine: Engine, args: argparse.Namespace) -> None:
    keywords = _keywords(args.keywords)
    with engine.begin() as connection:
        template = _found(connection, args.name, args.keywords)
        if template is None:
            value: object = _reached(connection, get_sequence(args.name, connection))
        else:
            key = template.parsed.key(keywords)
            known = key in counter_keys(connection, template.name)
            value = _last_identifier(connection, template, key) if known else None
    if args.json:
        print_json({"name": args.name, "last": value})
    elif value is not None:
        write_lines([value])


def listing(engine: Engine, args: argparse.Namespace) -> None:
    with engine.begin() as connection:
        entries = [_entry(connection, name) for name in stored_names(connection)]
    print_listing(entries, as_json=args.json)


def delete(engine: Engine, args: argparse.Namespace) -> None:
    from ..one_call import delete_sequence

    if args.dry_run:
        from .dry_run import delete_plan

        with engine.connect() as connection:  # read only, rolled back
            plan = delete_plan(connection, args.name)
        write_lines(plan)
        return
    if not args.yes and sys.stdin.isatty():  # a person: ask, holding no transaction open
        with engine.begin() as connection:
            row = load(connection, check_name(args.name))
        if row is None:
            raise UnknownSequence(args.name)
        kind = "sequence" if row.pattern is None else "template"
        print(f"delete {kind} {args.name!r} and the values it handed out? [y/N] ", end="")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            raise SequenceError(f"{args.name!r} was not deleted")
    with engine.begin() as connection:
        if not delete_sequence(connection, args.name):
            raise UnknownSequence(args.name)


def restart(engine: Engine, args: argparse.Namespace) -> None:
    keywords = _keywords(args.keywords)
    if args.dry_run:
        from .dry_run import restart_plan

        with engine.connect() as connection:  # read only, rolled back
            template = _found(connection, args.name, args.keywords)
            plan = restart_plan(connection, args.name, args.value, template, keywords)
        write_lines(plan)
        return
    with engine.begin() as connection:
        template = _found(connection, args.name, args.keywords)
        if template is None:
            get_sequence(args.name, connection).restart(connection, args.value)
        else:
            template.restart(connection, args.value, nowait=False, **keywords)


def audit_column(engine: Engine, args: argparse.Namespace) -> None:
    """Print what audit() finds; a column that is not clean, or no rows, exits 1 (after the
    report)."""
    from ..admin.audit import audit

    schema, _, name = args.table.rpartition(".")
    with (
        progress(f"mortar-seq audit {args.table}.{args.column}"),
        engine.begin() as connection,
    ):
        try:
            table = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=connection)
        except sa.exc.NoSuchTableError as exc:
            raise SequenceError(f"no table {args.table!r}") from exc
        column = _column(table, args.column)
        if not isinstance(column.type, sa.Integer):
            # audit() raises TypeError, a program's mistake; here the user named the column.
            raise SequenceError(
                f"{column} holds {type(column.type).__name__} values: "
                "only a column of integers can be audited"
            )
        pairs = _keywords(args.where).items()
        where = [_matching(table, key, str(value)) for key, value in pairs]
        found = audit(
            connection,
            column,
            start=args.start,
            step=args.step,
            where=sa.and_(*where) if where else None,
        )
    print_audit(found, as_json=args.json)
    if not found.count:
        among = f" where {' and '.join(args.where)}" if args.where else ""
        raise SequenceError(f"{args.table}.{args.column}: no rows to audit{among}")
    if not found.clean:
        raise SequenceError(
            f"{args.table}.{args.column} is not clean: {len(found.gaps)} gap(s), "
            f"{len(found.duplicates)} duplicate value(s), {len(found.off_step)} off the series"
        )


def importing(engine: Engine, args: argparse.Namespace) -> None:
    from ..importing import import_django_sequences, import_invenio

    if args.dry_run:
        from .dry_run import import_plan

        with (
            progress(f"mortar-seq import {args.source} --dry-run"),
            engine.connect() as connection,  # read only, rolled back
        ):
            plan = import_plan(connection, args.source, schema=args.schema, exclude=args.exclude)
        write_lines(plan)
        return
    with progress(f"mortar-seq import {args.source}"), engine.begin() as connection:
        options = {"schema": args.schema, "exclude": args.exclude}
        if args.source == "django-sequences":
            moved: dict[str, object] = dict(import_django_sequences(connection, **options))
        else:
            moved = {
                f"{name}\t{key}": value
                for name, keys in import_invenio(connection, **options).items()
                for key, value in keys.items()
            }
    write_lines(f"{name}\t{value}" for name, value in moved.items())


def _column(table: sa.Table, name: str) -> sa.Column[Any]:
    if name not in table.c:
        raise SequenceError(f"table {table.fullname!r} has no column {name!r}")
    return table.c[name]


# How ``--where-key`` text is read for a column of each Python type; others compare as text.
_READERS: dict[type, abc.Callable[[str], object]] = {
    int: int,
    Decimal: Decimal,
    float: float,
    dt.date: dt.date.fromisoformat,
    dt.datetime: dt.datetime.fromisoformat,
    dt.time: dt.time.fromisoformat,
    uuid.UUID: uuid.UUID,
}


def _matching(table: sa.Table, key: str, text: str) -> sa.ColumnElement[bool]:
    """``KEY = VALUE``, the value bound with the column's type: PostgreSQL compares no integer
    or date column with text."""
    column = _column(table, key)
    try:
        kind = column.type.python_type
    except NotImplementedError:  # a type that does not say
        return column == text
    read = _READERS.get(kind)
    if read is None:
        return column == text
    try:
        value = read(text)
    except (ValueError, ArithmeticError) as exc:  # Decimal's InvalidOperation is the latter
        raise SequenceError(
            f"--where-key {key}={text}: {column} holds {kind.__name__} values"
        ) from exc
    return column == sa.literal(value, column.type)


def _entry(connection: Connection, name: str) -> dict[str, Any]:
    template = _found(connection, name, [])
    if template is None:
        sequence = get_sequence(name, connection)
        return {
            "name": name,
            "kind": sequence.strategy.kind,
            "settings": sequence.definition.settings(),
            "pattern": None,
            "parent": None,
            "last": _reached(connection, sequence),
            "counters": None,
        }
    keys = sorted(counter_keys(connection, name))
    return {
        "name": name,
        "kind": template.strategy.kind,
        "settings": {"start": template.start, "step": template.step},
        "pattern": template.pattern,
        "parent": None if template.parent is None else template.parent.name,
        "last": None,
        "counters": {key: _last_identifier(connection, template, key) for key in keys},
    }


def _reached(connection: Connection, sequence: Sequence) -> int | None:
    """The last value handed out; for a pooled sequence, the end of the last reserved block.

    A new process has handed out nothing from a pool of its own, so a pooled sequence's
    ``last`` would always be empty here: the end of the last block reserved by anyone is
    what bounds the values handed out.
    """
    return reaching(sequence.strategy, "mortar-seq last").reached(connection, sequence.definition)


def _last_identifier(connection: Connection, template: Template, key: str) -> str | None:
    counter = Definition(template.name, template.start, template.step, None, key)
    value = reaching(template.strategy, "mortar-seq").reached(connection, counter)
    return None if value is None else identifier(key, value)


def _contiguous(sequence: Sequence) -> bool:
    """A gapless sequence that never resets hands out any count as one range."""
    return gapless(sequence.strategy) and sequence.definition.reset is None


def _chunks(count: int) -> abc.Iterator[int]:
    """*count* in chunks of at most CHUNK; a count below 1 as it is, for the library to refuse."""
    if count < 1:
        yield count
    while count >= 1:
        yield min(count, CHUNK)
        count -= CHUNK


def _keywords(pairs: list[str]) -> dict[str, object]:
    """KEY=VALUE pairs, split at the first '='; values stay text (the pattern converts them)."""
    keywords: dict[str, object] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise TemplateError(f"expected KEY=VALUE, not {pair!r}")
        if key == "nowait":  # an option of Template.next(), never a placeholder
            raise TemplateError("nowait is not a template keyword")
        keywords[key] = value
    return keywords


def _found(connection: Connection, name: str, pairs: list[str]) -> Template | None:
    """Return the template *name*, or None for a plain sequence (which takes no KEY=VALUE)."""
    row = load(connection, check_name(name))
    if row is None:
        raise UnknownSequence(name)
    if row.pattern is not None:
        template = get_template(name, connection)
        _refuse_unknown(template, pairs)
        return template
    if pairs:
        raise TemplateError(f"{name!r} is a sequence: it takes no KEY=VALUE")
    return None


def _refuse_unknown(template: Template, pairs: list[str]) -> None:
    """A mistyped keyword is an error, not a keyword the pattern leaves out."""
    known = template.parsed.keywords
    unknown = sorted({pair.partition("=")[0] for pair in pairs} - known)
    if unknown:
        no = ", ".join(repr(key) for key in unknown)
        raise TemplateError(
            f"{template.name!r} has no keyword {no}: its pattern {template.pattern!r} takes "
            f"{', '.join(sorted(known)) or 'none'}"
        )


def _refuse_other_kind(connection: Connection, name: str, *, template: bool) -> None:
    """Say what is true when *name* exists as the other kind (a sequence, a template)."""
    row = load(connection, check_name(name))
    if row is not None and (row.pattern is not None) != template:
        kind = "a template" if row.pattern is not None else "a sequence"
        raise SequenceConfigError(f"{name!r} already exists as {kind}")
