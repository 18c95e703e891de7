"""``mortar-seq``: the command line, a thin shell over the public functions."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .errors import SequenceError
from .model import create_tables
from .registry import get_sequence, register_sequence
from .storage import stored_names
from .strategies import NativeSequence, PooledSequence, TableSequence

DEFAULT_URL = "sqlite:///mortar_seq.sqlite"


def _create(connection: Connection, args: argparse.Namespace) -> None:
    register_sequence(
        args.name, connection, args.impl, start=args.start, step=args.step, reset=args.reset
    )


def _next(connection: Connection, args: argparse.Namespace) -> None:
    for value in get_sequence(args.name, connection).next_many(connection, args.count):
        print(value)


def _last(connection: Connection, args: argparse.Namespace) -> None:
    value = get_sequence(args.name, connection).last(connection)
    if value is not None:
        print(value)


def _list(connection: Connection, args: argparse.Namespace) -> None:
    for name in stored_names(connection):
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

    create = commands.add_parser("create", help="create a sequence")
    create.add_argument("name", metavar="NAME")
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
    take.add_argument("-n", dest="count", type=int, default=1, metavar="COUNT")
    take.set_defaults(run=_next)

    last = commands.add_parser("last", help="print the last value handed out")
    last.add_argument("name", metavar="NAME")
    last.set_defaults(run=_last)

    commands.add_parser("list", help="list the stored sequences").set_defaults(run=_list)
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
