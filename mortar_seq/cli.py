"""``mortar-seq``: the command line, a thin shell over the public functions."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .errors import SequenceError, TemplateError, UnknownSequence
from .model import create_tables
from .registry import get_sequence, get_template, register_sequence, register_template
from .storage import load, stored_names
from .strategies import NativeSequence, PooledSequence, TableSequence
from .template import Template

DEFAULT_URL = "sqlite:///mortar_seq.sqlite"


def _create(connection: Connection, args: argparse.Namespace) -> None:
    if args.pattern is None:
        register_sequence(
            args.name, connection, args.impl, start=args.start, step=args.step, reset=args.reset
        )
        return
    if args.reset is not None:
        raise TemplateError("templates take no --reset")
    register_template(
        args.name, args.pattern, connection, start=args.start, step=args.step, impl=args.impl
    )


def _keywords(pairs: list[str]) -> dict[str, object]:
    """KEY=VALUE pairs, split at the first '='; values that look like integers become ints."""
    keywords: dict[str, object] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise TemplateError(f"expected KEY=VALUE, not {pair!r}")
        try:
            keywords[key] = int(value)
        except ValueError:
            keywords[key] = value
    return keywords


def _found(connection: Connection, name: str, pairs: list[str]) -> Template | None:
    """Return the template *name*, or None for a plain sequence (which takes no KEY=VALUE)."""
    row = load(connection, name)
    if row is None:
        raise UnknownSequence(name)
    if row.pattern is not None:
        return get_template(name, connection)
    if pairs:
        raise TemplateError(f"{name!r} is a sequence: it takes no KEY=VALUE")
    return None


def _next(connection: Connection, args: argparse.Namespace) -> None:
    template = _found(connection, args.name, args.keywords)
    if template is not None:
        taken: list[object] = list(
            template.next_many(connection, args.count, **_keywords(args.keywords))
        )
    else:
        taken = list(get_sequence(args.name, connection).next_many(connection, args.count))
    for value in taken:
        print(value)


def _last(connection: Connection, args: argparse.Namespace) -> None:
    template = _found(connection, args.name, args.keywords)
    if template is not None:
        last: object = template.last(connection, **_keywords(args.keywords))
    else:
        last = get_sequence(args.name, connection).last(connection)
    if last is not None:
        print(last)


def _list(connection: Connection, args: argparse.Namespace) -> None:
    for name in stored_names(connection):
        template = _found(connection, name, [])
        if template is not None:
            settings = f"start={template.start} step={template.step}"
            print(f"{name}\t{template.strategy.kind}\t{settings}\tpattern={template.pattern}")
            continue
        sequence = get_sequence(name, connection)
        settings = " ".join(
            f"{key}={value}" for key, value in sequence.definition.settings().items()
        )
        last = sequence.last(connection)
        print(f"{name}\t{sequence.strategy.kind}\t{settings}\tlast={'' if last is None else last}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mortar-seq", description="Hand out numbers from named sequences in a database."
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("MORTAR_SEQ_URL", DEFAULT_URL),
        help=f"SQLAlchemy database URL (default: $MORTAR_SEQ_URL, else {DEFAULT_URL})",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser("create", help="create a sequence, or a template with PATTERN")
    create.add_argument("name", metavar="NAME")
    create.add_argument("pattern", metavar="PATTERN", nargs="?", help="e.g. '{year}-{counter:04d}'")
    create.add_argument("--start", type=int, default=1, help="first value (default 1)")
    create.add_argument("--step", type=int, default=1, help="increment (default 1)")
    create.add_argument("--reset", type=int, help="start again on reaching this value")
    kinds = create.add_mutually_exclusive_group()
    kinds.add_argument(
        "--native",
        dest="impl",
        action="store_const",
        const=NativeSequence,
        help="a database SEQUENCE: fast, not gapless (PostgreSQL, MariaDB, Oracle)",
    )
    kinds.add_argument(
        "--pooled",
        dest="impl",
        action="store_const",
        const=PooledSequence,
        help="blocks of values handed out from memory: fastest, not gapless",
    )
    create.set_defaults(run=_create, impl=TableSequence)

    take = commands.add_parser("next", help="take the next value(s), one per line")
    take.add_argument("name", metavar="NAME")
    take.add_argument("keywords", metavar="KEY=VALUE", nargs="*", help="a template's keywords")
    take.add_argument("-n", dest="count", type=int, default=1, metavar="COUNT")
    take.set_defaults(run=_next)

    last = commands.add_parser("last", help="print the last value handed out")
    last.add_argument("name", metavar="NAME")
    last.add_argument("keywords", metavar="KEY=VALUE", nargs="*", help="a template's keywords")
    last.set_defaults(run=_last)

    listing = commands.add_parser("list", help="list the stored sequences and templates")
    listing.set_defaults(run=_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv*; return the exit status."""
    args = _parser().parse_args(argv)
    run: Callable[[Connection, argparse.Namespace], None] = args.run
    try:
        engine = sa.create_engine(args.url)
        try:
            create_tables(engine)
            with engine.begin() as connection:
                run(connection, args)
        finally:
            engine.dispose()
    except SequenceError as exc:
        return _fail(str(exc))
    except sa.exc.DBAPIError as exc:
        return _fail(f"database error: {str(exc.orig).strip().splitlines()[0]}")
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        return _fail(f"cannot use {args.url!r}: {str(exc).splitlines()[0]}")
    return 0


def _fail(message: str) -> int:
    print(f"mortar-seq: {message}", file=sys.stderr)
    return 1
