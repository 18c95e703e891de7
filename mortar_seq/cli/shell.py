"""``mortar-seq``: the command line, a thin shell over the public functions.

Exit statuses: 0 done, 1 refused or failed (one line on stderr), 2 bad usage, 130
interrupted (Ctrl-C), 141 output pipe closed (quietly, as other Unix tools).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine

# SQLAlchemy, and the library's modules (which import it), are imported once a command
# runs, not here: --version and --help then answer in a tenth of the time (importing
# SQLAlchemy and the ORM takes most of a second on a slow machine; see
# benchmarks/cli_startup.py).

DEFAULT_URL = "sqlite:///mortar_seq.sqlite"
# SQLite's busy timeout: how long to wait for another process's write lock.
DEFAULT_WAIT_SECONDS = 5.0
INTERRUPTED = 130  # 128 + SIGINT, as shells report it
BROKEN_PIPE = 141  # 128 + SIGPIPE
# Only these make the library's tables: made uninvited, they would stop the Alembic
# migration that should make them ("already exists"). audit reads the user's tables alone.
MAKING_TABLES = frozenset({"create", "init"})
NEEDING_NO_TABLES = frozenset({"audit"})
# The implementations' kinds, as NativeSequence.kind etc. say (a test checks they agree):
# spelled out so that building the parser imports no strategy.
TABLE, NATIVE, POOLED = "table", "native", "pooled"


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not (math.isfinite(seconds) and seconds >= 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 0 or more, not {text!r}")
    return seconds


def _global_options(defaults: bool) -> argparse.ArgumentParser:
    """--url and --wait, accepted before the command and after it (defaults set once only)."""
    options = argparse.ArgumentParser(add_help=False)
    url = os.environ.get("MORTAR_SEQ_URL", DEFAULT_URL)
    options.add_argument(
        "--url",
        default=url if defaults else argparse.SUPPRESS,
        help=f"SQLAlchemy database URL (default: $MORTAR_SEQ_URL, else {DEFAULT_URL})",
    )
    options.add_argument(
        "--wait",
        type=_seconds,
        metavar="SECONDS",
        default=DEFAULT_WAIT_SECONDS if defaults else argparse.SUPPRESS,
        help="on SQLite, how long to wait for another process's write lock "
        f"(default {DEFAULT_WAIT_SECONDS:g})",
    )
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mortar-seq",
        description="Hand out numbers from named sequences in a database.",
        parents=[_global_options(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"mortar-seq {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    options = [_global_options(defaults=False)]

    made = commands.add_parser(
        "create", parents=options, help="create a sequence, or a template with PATTERN"
    )
    made.add_argument("name", metavar="NAME")
    made.add_argument("pattern", metavar="PATTERN", nargs="?", help="e.g. '{year}-{counter:04d}'")
    made.add_argument("--start", type=int, default=1, help="first value (default 1)")
    made.add_argument("--step", type=int, default=1, help="increment (default 1)")
    made.add_argument("--reset", type=int, help="start again on reaching this value")
    kinds = made.add_mutually_exclusive_group()
    kinds.add_argument(
        "--native",
        dest="impl",
        action="store_const",
        const=NATIVE,
        help="a database SEQUENCE: fast, not gapless (PostgreSQL, MariaDB, Oracle)",
    )
    kinds.add_argument(
        "--pooled",
        dest="impl",
        action="store_const",
        const=POOLED,
        help="blocks of values handed out from memory: fastest, not gapless",
    )
    kinds.add_argument(
        "--impl",
        dest="impl",
        metavar="KIND",
        help="any implementation's kind: table, native, pooled, or one a package declares "
        "in the mortar_seq.implementations entry-point group",
    )
    made.set_defaults(run=_command("create"), impl=TABLE)

    initialised = commands.add_parser(
        "init",
        parents=options,
        help="create the library's tables where missing (without Alembic; with it: "
        "alembic upgrade mortar_seq@head)",
    )
    initialised.set_defaults(run=_tables_only)

    taking = commands.add_parser(
        "next", parents=options, help="take the next value(s), one per line"
    )
    taking.add_argument("name", metavar="NAME")
    taking.add_argument(
        "keywords", metavar="KEY=VALUE", nargs="*", default=[], help="a template's keywords"
    )
    taking.add_argument(
        "-n",
        dest="count",
        type=int,
        default=1,
        metavar="COUNT",
        help="how many values to take (default 1); each is printed once committed",
    )
    taking.add_argument("--json", action="store_true", help="as one JSON array")
    taking.set_defaults(run=_command("take"))

    reading = commands.add_parser("last", parents=options, help="print the last value handed out")
    reading.add_argument("name", metavar="NAME")
    reading.add_argument(
        "keywords", metavar="KEY=VALUE", nargs="*", default=[], help="a template's keywords"
    )
    reading.add_argument("--json", action="store_true", help='as JSON: {"name", "last"}')
    reading.set_defaults(run=_command("last"))

    listed = commands.add_parser(
        "list", parents=options, help="list the stored sequences and templates"
    )
    listed.add_argument("--json", action="store_true", help="as JSON, with templates' counters")
    listed.set_defaults(run=_command("listing"))

    deleted = commands.add_parser(
        "delete", parents=options, help="delete a sequence or template and its values"
    )
    deleted.add_argument("name", metavar="NAME")
    deleted.add_argument(
        "--yes", action="store_true", help="do not ask (on a terminal, delete asks first)"
    )
    deleted.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be deleted (the definition, its counters, a SEQUENCE); "
        "delete nothing",
    )
    deleted.set_defaults(run=_command("delete"))

    restarted = commands.add_parser(
        "restart", parents=options, help="make VALUE the next value handed out"
    )
    restarted.add_argument("name", metavar="NAME")
    restarted.add_argument("value", metavar="VALUE", type=int)
    restarted.add_argument(
        "keywords", metavar="KEY=VALUE", nargs="*", default=[], help="a template's keywords"
    )
    restarted.add_argument(
        "--dry-run",
        action="store_true",
        help="print the last value now and the next value it would set; change nothing",
    )
    restarted.set_defaults(run=_command("restart"))

    audited = commands.add_parser(
        "audit", parents=options, help="report gaps and duplicates in a column of numbers"
    )
    audited.add_argument("table", metavar="TABLE", help="a table, or SCHEMA.TABLE")
    audited.add_argument("column", metavar="COLUMN")
    audited.add_argument("--json", action="store_true", help="the report as one JSON object")
    audited.add_argument("--start", type=int, help="where the series starts (default: its first)")
    audited.add_argument("--step", type=int, default=1, help="increment (default 1)")
    audited.add_argument(
        "--where-key",
        dest="where",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="audit only rows whose column KEY holds VALUE (repeatable)",
    )
    audited.set_defaults(run=_command("audit_column"))

    imported = commands.add_parser(
        "import", parents=options, help="carry counters over from another library's tables"
    )
    imported.add_argument(
        "source",
        choices=["django-sequences", "invenio-sequencegenerator"],
        help="the library whose tables are read: django-sequences' sequences_sequence, "
        "invenio-sequencegenerator's sequencegenerator_template and _counter",
    )
    imported.add_argument("--schema", help="the schema of the other library's tables")
    imported.add_argument(
        "--exclude",
        metavar="NAME",
        action="append",
        default=[],
        help="leave out a django-sequences sequence, or an invenio counter by its "
        "template_instance (repeatable)",
    )
    imported.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be carried over, a line per counter; write nothing",
    )
    imported.set_defaults(run=_command("importing"))
    return parser


def _command(name: str) -> Callable[[Engine, argparse.Namespace], None]:
    """The verb *name* of the commands module, imported when it runs."""

    def run(engine: Engine, args: argparse.Namespace) -> None:
        from . import commands

        verb: Callable[[Engine, argparse.Namespace], None] = getattr(commands, name)
        verb(engine, args)

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv*; return the exit status."""
    parser = _parser()
    if "_ARGCOMPLETE" in os.environ:  # a shell asks for completions (argcomplete)
        from .completion import complete

        return complete(parser)
    args = parser.parse_args(argv)
    try:
        _run(args)
        sys.stdout.flush()  # a closed pipe is told here, not at exit
    except KeyboardInterrupt:
        return _fail("interrupted", INTERRUPTED)
    except BrokenPipeError:
        # Whoever reads stopped reading (``| head``): stop quietly, as other tools do.
        # Point stdout at /dev/null so that flushing it at exit raises nothing more.
        with suppress(OSError, ValueError):  # stdout may be no file at all (a test's)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
    except Exception as exc:
        from .errors import explain

        message = explain(exc, args.url)
        if message is None:
            raise
        return _fail(message, 1)
    return 0


def _run(args: argparse.Namespace) -> None:
    import sqlalchemy as sa

    from ..errors import SequenceError
    from ..model import create_tables
    from .errors import masked

    run: Callable[[Engine, argparse.Namespace], None] = args.run
    try:
        url = sa.make_url(args.url)
    except ValueError as exc:  # a port that is not a number
        raise SequenceError(f"cannot use {masked(args.url)}: {exc}") from exc
    if args.command not in MAKING_TABLES:
        _refuse_missing_file(url)
    connect_args = {"timeout": args.wait} if url.get_backend_name() == "sqlite" else {}
    engine = sa.create_engine(url, connect_args=connect_args)
    try:
        if args.command in MAKING_TABLES:
            create_tables(engine)
        elif args.command not in NEEDING_NO_TABLES:
            _refuse_missing_tables(engine, args.url)
        run(engine, args)
    finally:
        engine.dispose()


def _refuse_missing_file(url: sa.URL) -> None:
    """Only ``create`` makes a new SQLite file: elsewhere a missing one is a wrong folder."""
    from ..errors import SequenceError

    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return
    if database.startswith("file:") or Path(database).exists():
        return  # a URI filename (uri=true) is SQLite's to resolve
    raise SequenceError(f"no database file {database!r} here ('mortar-seq create' makes one)")


def _tables_only(engine: Engine, args: argparse.Namespace) -> None:
    """``init``: the tables, made by `_run`, are all it does."""


def _refuse_missing_tables(engine: Engine, url: str) -> None:
    import sqlalchemy as sa

    from ..errors import SequenceError
    from ..model import Counter, StoredSequence
    from .errors import masked

    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        # What the commands use: the commit marker table is run_in_transaction's alone.
        tables = [StoredSequence.__tablename__, Counter.__tablename__]
        missing = [name for name in tables if not inspector.has_table(name)]
    if missing:
        what = "mortar_seq tables" if len(missing) == len(tables) else f"table {missing[0]}"
        raise SequenceError(
            f"no {what} in {masked(url)}: make them with 'alembic upgrade mortar_seq@head' "
            "where Alembic manages the database, else with 'mortar-seq init'"
        )


def _fail(message: str, status: int) -> int:
    print(f"mortar-seq: {message}", file=sys.stderr)
    return status
