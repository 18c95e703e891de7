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
