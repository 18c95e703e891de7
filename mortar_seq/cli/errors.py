"""What a failure of the command line tells its user: one line, a hint where one helps."""

from __future__ import annotations

import sqlalchemy as sa

from ..errors import SequenceError

# The extras that install a driver, and the URL scheme that driver takes.
_EXTRAS = {
    "postgresql": ("postgresql", "postgresql+psycopg://"),
    "mysql": ("mariadb", "mysql+pymysql://"),
    "mariadb": ("mariadb", "mariadb+pymysql://"),
}
_LOCKED_HINT = "another process holds the database's write lock; --wait SECONDS waits longer for it"


def explain(exc: BaseException, url: str) -> str | None:
    """Return the one line that tells what *exc* means, or None for a bug (left to propagate).

    The URL is shown with its password masked.
    """
    if isinstance(exc, SequenceError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, sa.exc.DBAPIError):
        said = _first_line(exc.orig)
        if "database is locked" in said:  # SQLite's busy timeout ran out
            return f"database error: {said} ({_LOCKED_HINT})"
        if exc.statement is None:  # raised while connecting
            return f"cannot connect to {masked(url)}: {said}"
        return f"database error: {said}"
    if isinstance(exc, ImportError):
        return f"cannot use {masked(url)}: its driver is missing ({exc}){_driver_hint(url)}"
    if isinstance(exc, sa.exc.SQLAlchemyError):
        return f"cannot use {masked(url)}: {_first_line(exc)}"
    if isinstance(exc, OSError):  # writing the output: a full disk, say
        return _first_line(exc)
    return None


def masked(url: str) -> str:
    """Return *url* quoted, its password masked; one that cannot be parsed is not shown.

    >>> masked("postgresql+psycopg://me:secret@db/test")
    "'postgresql+psycopg://me:***@db/test'"
    """
    try:
        return repr(sa.make_url(url).render_as_string(hide_password=True))
    except (sa.exc.ArgumentError, ValueError):
        return "the URL given (it cannot be parsed)"


def _driver_hint(url: str) -> str:
    try:
        backend = sa.make_url(url).get_backend_name()
    except (sa.exc.ArgumentError, ValueError):
        return ""
    if backend not in _EXTRAS:
        return ""
    extra, scheme = _EXTRAS[backend]
    return f"; pip install 'mortar_seq[{extra}]' and use {scheme}..."


def _first_line(exc: object) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
