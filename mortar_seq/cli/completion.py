"""Shell completion (bash, zsh) through argcomplete, the ``completion`` extra: commands,
options, import sources, and the names stored in the database a command would use.

Imported only when a shell asks (argcomplete's shell function sets ``_ARGCOMPLETE``), so
that other runs pay nothing for it.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

# The commands whose NAME is one already stored (create's is a new one).
STORED_NAME = frozenset({"next", "last", "delete", "restart"})


def complete(parser: argparse.ArgumentParser) -> int:
    """Answer the shell's request and exit; without argcomplete, return 1 and complete nothing."""
    try:
        # Imported by name: an optional extra, absent where the package is type-checked.
        argcomplete = importlib.import_module("argcomplete")
    except ImportError:
        return 1
    complete_names(parser)
    # Other arguments (VALUE, PATTERN, KEY=VALUE) are no file names: offer nothing there.
    argcomplete.autocomplete(
        parser, always_complete_options=False, default_completer=argcomplete.SuppressCompleter()
    )
    return 1  # not reached: autocomplete answers, then exits


def complete_names(parser: argparse.ArgumentParser) -> None:
    """Make `stored_names` the completer of the NAME of the commands that use a stored one."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, subparser in action.choices.items():
                for argument in subparser._actions:
                    if command in STORED_NAME and argument.dest == "name":
                        argument.completer = stored_names  # what argcomplete reads


def stored_names(prefix: str, parsed_args: argparse.Namespace, **_: object) -> list[str]:
    """Return the names stored in the database of *parsed_args* (its ``url``) that start
    with *prefix*; none where it cannot be read.

    Read only: a missing SQLite file is not made, missing tables are not created, and a
    database error completes nothing rather than printing into the shell's line.
    """
    import sqlalchemy as sa

    from ..storage import stored_names as names

    try:
        url = sa.make_url(parsed_args.url)
    except (sa.exc.ArgumentError, ValueError):
        return []
    database = url.database or ""
    on_disk = database not in ("", ":memory:") and not database.startswith("file:")
    if url.get_backend_name() == "sqlite" and on_disk and not Path(database).exists():
        return []  # connecting would make the file
    try:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            with engine.connect() as connection:
                found = names(connection)
        finally:
            engine.dispose()
    except (sa.exc.SQLAlchemyError, ImportError):  # no tables, no server, no driver
        return []
    return [name for name in found if name.startswith(prefix)]
