"""What a driver's error means: each driver says it its own way."""

from __future__ import annotations

import collections.abc as abc

from sqlalchemy.exc import DBAPIError

_POSTGRESQL_LOCK_NOT_AVAILABLE = "55P03"
_POSTGRESQL_SEQUENCE_LIMIT = "2200H"
_MYSQL_LOCK_WAIT_TIMEOUT = frozenset({1205, 3572})  # MariaDB (also for NOWAIT), MySQL 8 NOWAIT
_MYSQL_SEQUENCE_RUN_OUT = frozenset({4084})
# Deadlock (on Galera also a failed certification) and "WSREP has not yet prepared node".
_MYSQL_WRITE_CONFLICT = frozenset({1213, 1047})
_POSTGRESQL_WRITE_CONFLICT = frozenset({"40001", "40P01"})  # serialization failure, deadlock
_SQLITE_BUSY_OR_LOCKED = frozenset({5, 6})
_ORACLE_SEQUENCE_LIMIT = frozenset({8004})
# CREATE SEQUENCE refusing its options: PostgreSQL's invalid_parameter_value ("MINVALUE (0)
# must be less than MAXVALUE (0)"), MariaDB's "Sequence ... has out of range value for
# options", Oracle's ORA-04004 to ORA-04013 on MINVALUE, MAXVALUE, INCREMENT, START and CACHE.
_POSTGRESQL_INVALID_PARAMETER = "22023"
_MYSQL_SEQUENCE_OPTIONS = frozenset({4085})
_ORACLE_SEQUENCE_OPTIONS = frozenset({4004, 4005, 4006, 4008, 4010, 4013})
# A table the statement names does not exist: PostgreSQL's undefined_table, MariaDB's
# ER_NO_SUCH_TABLE, Oracle's ORA-00942. SQLite has no code of its own (SQLITE_ERROR).
_POSTGRESQL_UNDEFINED_TABLE = "42P01"
_MYSQL_NO_SUCH_TABLE = frozenset({1146})
_ORACLE_NO_SUCH_TABLE = frozenset({942})
_SQLITE_NO_SUCH_TABLE = "no such table: "


def _sqlstate(exc: DBAPIError) -> object:
    # PyMySQL also carries a (generic) sqlstate, so this alone never decides for MySQL.
    return getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)


def _first_argument(exc: DBAPIError) -> object:
    args: tuple[object, ...] = getattr(exc.orig, "args", ())
    return args[0] if args else None


def _oracle_code(exc: DBAPIError) -> object:
    error = _first_argument(exc)
    return getattr(error, "code", None)


def is_lock_timeout(exc: DBAPIError) -> bool:
    """Tell whether *exc* says a lock could not be had in time (and nothing worse)."""
    if _sqlstate(exc) == _POSTGRESQL_LOCK_NOT_AVAILABLE:
        return True
    sqlite_code = getattr(exc.orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int) and sqlite_code & 0xFF in _SQLITE_BUSY_OR_LOCKED:
        return True
    errno = _first_argument(exc)
    return isinstance(errno, int) and errno in _MYSQL_LOCK_WAIT_TIMEOUT


def is_sequence_exhausted(exc: DBAPIError) -> bool:
    """Tell whether *exc* says a database SEQUENCE reached its limit."""
    return _one_of(exc, _POSTGRESQL_SEQUENCE_LIMIT, _MYSQL_SEQUENCE_RUN_OUT, _ORACLE_SEQUENCE_LIMIT)


def is_sequence_refused(exc: DBAPIError) -> bool:
    """Tell whether *exc*, raised by CREATE SEQUENCE, says the database refused its options."""
    return _one_of(
        exc, _POSTGRESQL_INVALID_PARAMETER, _MYSQL_SEQUENCE_OPTIONS, _ORACLE_SEQUENCE_OPTIONS
    )


def is_table_missing(exc: DBAPIError) -> bool:
    """Tell whether *exc* says that a table its statement names does not exist."""
    if str(exc.orig).startswith(_SQLITE_NO_SUCH_TABLE):
        return getattr(exc.orig, "sqlite_errorcode", None) is not None
    return _one_of(exc, _POSTGRESQL_UNDEFINED_TABLE, _MYSQL_NO_SUCH_TABLE, _ORACLE_NO_SUCH_TABLE)


def _one_of(
    exc: DBAPIError, sqlstate: str, mysql: abc.Container[int], oracle: abc.Container[object]
) -> bool:
    """Tell whether *exc* is PostgreSQL's *sqlstate*, one of MySQL's errors *mysql*, or one
    of Oracle's *oracle*."""
    if _sqlstate(exc) == sqlstate:
        return True
    errno = _first_argument(exc)
    if isinstance(errno, int) and errno in mysql:
        return True
    return _oracle_code(exc) in oracle


def is_write_conflict(exc: DBAPIError) -> bool:
    """Tell whether *exc* rolled back a transaction that may simply run again."""
    if _sqlstate(exc) in _POSTGRESQL_WRITE_CONFLICT:
        return True
    errno = _first_argument(exc)
    return isinstance(errno, int) and errno in _MYSQL_WRITE_CONFLICT


# Faults after which a whole transaction may simply run again: it was rolled back, or its
# connection never came up. PostgreSQL: serialization failure, deadlock, lock timeout, a
# backend terminated or the server shutting down or crashed, "cannot connect now" (starting
# up, in recovery), a read-only transaction (a standby reached during a failover); and any
# connection exception (class 08).
_POSTGRESQL_TRANSIENT = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "25006"})
_POSTGRESQL_CONNECTION_CLASS = "08"
_POSTGRESQL_CONNECTION_LOST = frozenset({"57P01", "57P02"})
# MariaDB: lock wait timeout; deadlock or a failed Galera certification; a Galera node not
# ready (1047); a COMMIT refused while the node is out of the primary component (1180);
# server shutting down (1053); cannot connect (2002, 2003); server gone, connection lost or
# killed (2006, 2013, 1927, 4031).
_MYSQL_TRANSIENT = frozenset({1205, 1213, 1047, 1180, 1053, 2002, 2003, 2006, 2013, 1927, 4031})
_MYSQL_CONNECTION_LOST = frozenset({1053, 2006, 2013, 1927, 4031})
_SQLITE_BUSY = 5
# What drivers say without a code: psycopg attaches no SQLSTATE to a failed connection,
# asyncpg's adapter none to a closed one.
_CONNECTION_LOST_MESSAGES = (
    "server closed the connection",
    "connection is closed",
    "connection was closed",
)
_TRANSIENT_MESSAGES = (
    *_CONNECTION_LOST_MESSAGES,
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is not yet accepting connections",
    # A standby with hot_standby = off, until it is promoted (PostgreSQL 15; asyncpg: 57P03).
    "the database system is not accepting connections",
    "the database system is in recovery mode",
    "connection refused",
    "session is read-only",  # no writable host yet (target_session_attrs=read-write)
    "wsrep has not yet prepared node for application use",
    "database is locked",
)
# PEP 249 raises these for faults outside the SQL itself; messages are matched on them only.
_FAULT_CLASS_NAMES = frozenset({"OperationalError", "InterfaceError"})


def is_transient(error: BaseException) -> bool:
    """Tell whether the driver's *error* rolled back a transaction that may simply run again."""
    if isinstance(error, ConnectionError):  # asyncpg lets a refused connection through
        return True
    sqlstate = _code(error, "sqlstate") or _code(error, "pgcode")
    if isinstance(sqlstate, str) and (
        sqlstate in _POSTGRESQL_TRANSIENT or sqlstate.startswith(_POSTGRESQL_CONNECTION_CLASS)
    ):
        return True
    errno = _errno(error)
    if errno in _MYSQL_TRANSIENT:
        return True
    sqlite_code = _code(error, "sqlite_errorcode")
    if isinstance(sqlite_code, int) and sqlite_code & 0xFF == _SQLITE_BUSY:
        return True
    return _says(error, _TRANSIENT_MESSAGES)


def is_connection_lost(error: BaseException) -> bool:
    """Tell whether the driver's *error* says the connection went away."""
    if isinstance(error, ConnectionError):
        return True
    sqlstate = _code(error, "sqlstate") or _code(error, "pgcode")
    if isinstance(sqlstate, str) and (
        sqlstate in _POSTGRESQL_CONNECTION_LOST or sqlstate.startswith(_POSTGRESQL_CONNECTION_CLASS)
    ):
        return True
    return _errno(error) in _MYSQL_CONNECTION_LOST or _says(error, _CONNECTION_LOST_MESSAGES)


def _code(error: BaseException, name: str) -> object:
    return getattr(error, name, None)


def _errno(error: BaseException) -> int | None:
    first = error.args[0] if error.args else None
    return first if isinstance(first, int) and not isinstance(first, bool) else None


def _says(error: BaseException, messages: tuple[str, ...]) -> bool:
    if not any(kind.__name__ in _FAULT_CLASS_NAMES for kind in type(error).__mro__):
        return False
    text = str(error).lower()
    return any(message in text for message in messages)
