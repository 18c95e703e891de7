"""Where databases differ in ways SQLAlchemy does not cover.

Insert-if-missing, lock waits, transactional DDL, what CREATE SEQUENCE refuses, and reading
many or the current values of a SEQUENCE. The compiled constructs have no default handler on
purpose: other dialects get UnsupportedCompilationError instead of SQL that is almost right.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import ExecutableDDLElement
from sqlalchemy.sql.compiler import DDLCompiler, SQLCompiler
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.expression import ClauseElement, Executable
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType

from ..definition import INT64_MAX, INT64_MIN

# Dialects whose INSERT ... ON CONFLICT DO NOTHING may run inside the caller's transaction.
# MySQL's INSERT IGNORE is left out on purpose: with InnoDB, transactions waiting behind an
# uncommitted insert of the same key deadlock on gap locks when it rolls back, so there the
# rows are created on a connection of their own (see storage.create_missing).
_ON_CONFLICT_INSERTS: dict[str, Callable[[Any], Any]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


def insert_unless_present(dialect: Dialect, entity: type[Any]) -> Any | None:
    """Return an INSERT of *entity* that leaves an existing key alone, or None where unsafe."""
    make = _ON_CONFLICT_INSERTS.get(dialect.name)
    return None if make is None else make(entity).on_conflict_do_nothing()


class LockWait(Protocol):
    """A connection setting that bounds how long statements wait for another transaction's lock."""

    aborts_transaction: bool  # an error aborts the whole transaction, so wrap it in a savepoint

    def swap(self, connection: Connection, seconds: int) -> Any: ...

    def restore(self, connection: Connection, previous: Any) -> None: ...


class _PostgresqlLockWait:
    aborts_transaction = True

    def swap(self, connection: Connection, seconds: int) -> Any:
        # set_config(..., true) is SET LOCAL: rolling back the savepoint around it undoes it too.
        old = sa.func.current_setting("lock_timeout")
        new = sa.func.set_config("lock_timeout", f"{max(seconds * 1000, 1)}ms", True)
        return connection.execute(sa.select(old, new)).one()[0]

    def restore(self, connection: Connection, previous: Any) -> None:
        connection.execute(sa.select(sa.func.set_config("lock_timeout", previous, True)))


class _MysqlLockWait:
    aborts_transaction = False  # InnoDB rolls back just the statement that timed out

    _read = sa.text("SELECT @@SESSION.innodb_lock_wait_timeout")
    _write = sa.text("SET SESSION innodb_lock_wait_timeout = :seconds")

    def swap(self, connection: Connection, seconds: int) -> Any:
        previous = connection.execute(self._read).scalar_one()
        connection.execute(self._write, {"seconds": seconds})
        return previous

    def restore(self, connection: Connection, previous: Any) -> None:
        connection.execute(self._write, {"seconds": int(previous)})


class _SqliteLockWait:
    # SQLite has no row locks: a writer waits, in the busy handler, for the database's one
    # write lock. A failed write leaves the transaction usable, and savepoints are avoided on
    # purpose: pysqlite releases an outermost SAVEPOINT as a COMMIT.
    aborts_transaction = False

    def swap(self, connection: Connection, seconds: int) -> Any:
        previous = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
        self.restore(connection, seconds * 1000)
        return previous

    def restore(self, connection: Connection, previous: Any) -> None:
        # PRAGMA takes no bound parameters; int() keeps anything but a number out.
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(previous)}")


_LOCK_WAITS: dict[str, LockWait] = {
    "postgresql": _PostgresqlLockWait(),
    "mysql": _MysqlLockWait(),
    "mariadb": _MysqlLockWait(),
    "sqlite": _SqliteLockWait(),
}


def lock_wait(dialect: Dialect) -> LockWait | None:
    """Return the lock-wait setting of *dialect*, or None where mortar_seq knows of none."""
    return _LOCK_WAITS.get(dialect.name)


# Dialects whose DDL takes part in the transaction (and can be rolled back with it).
# Elsewhere (MySQL, MariaDB, Oracle) DDL commits the open transaction implicitly.
_TRANSACTIONAL_DDL = frozenset({"postgresql", "sqlite", "mssql"})


def ddl_is_transactional(dialect: Dialect) -> bool:
    """Tell whether DDL can run inside the caller's transaction without committing it."""
    return dialect.name in _TRANSACTIONAL_DDL


class NextValues(Executable, ClauseElement):
    """SELECT the next *count* values of a SEQUENCE in one statement, in the order taken."""

    # Cached like any statement, keyed on what it is built from.
    inherit_cache = False
    # A list on the class is SQLAlchemy's own protocol for cache keys.
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012
        ("sequence", InternalTraversal.dp_named_ddl_element),
        ("count", InternalTraversal.dp_plain_obj),
    ]

    def __init__(self, sequence: sa.Sequence, count: int) -> None:
        self.sequence, self.count = sequence, int(count)


@compiles(NextValues, "postgresql")
def _next_values_postgresql(element: NextValues, compiler: SQLCompiler, **kw: Any) -> str:
    nextval = compiler.process(element.sequence.next_value(), **kw)
    # Rows come in no set order without ORDER BY. Sorted by the ordinal, nextval is
    # evaluated in that order too (before the sort, in scan order, or after it).
    return f"SELECT {nextval} FROM generate_series(1, {element.count}) AS n ORDER BY n"


@compiles(NextValues, "mysql")
@compiles(NextValues, "mariadb")
def _next_values_mariadb(element: NextValues, compiler: SQLCompiler, **kw: Any) -> str:
    # seq_1_to_<n> is a virtual table of MariaDB's Sequence storage engine.
    nextval = compiler.process(element.sequence.next_value(), **kw)
    return f"SELECT {nextval} FROM seq_1_to_{element.count} ORDER BY seq"


@compiles(NextValues, "oracle")
def _next_values_oracle(element: NextValues, compiler: SQLCompiler, **kw: Any) -> str:
    # No ORDER BY: Oracle refuses NEXTVAL beside it (ORA-02287); rows come in LEVEL order.
    name = compiler.preparer.format_sequence(element.sequence)
    return f"SELECT {name}.nextval FROM DUAL CONNECT BY LEVEL <= {element.count}"


class CurrentValue(Executable, ClauseElement):
    """SELECT the last value a SEQUENCE handed out to anyone, caches included; NULL before any.

    After a restart, the value before the one it set (as `TableSequence` stores it): NULL
    for a restart at the start, which the databases cannot tell from a sequence never used.
    """

    inherit_cache = False
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012
        ("sequence", InternalTraversal.dp_named_ddl_element)
    ]

    def __init__(self, sequence: sa.Sequence) -> None:
        self.sequence = sequence


@compiles(CurrentValue, "postgresql")
def _current_value_postgresql(element: CurrentValue, compiler: SQLCompiler, **kw: Any) -> str:
    # Not called, last_value is the next value to hand out: a fresh sequence's start, or
    # what ALTER SEQUENCE ... RESTART WITH set. The value before it is last_value - step,
    # except at the start, where nothing comes before: a restart there cannot be told from
    # a fresh sequence, and answers NULL as TableSequence does (its restart at start stores
    # NULL). Start and step come from the catalog (readable by all), not from the element:
    # the statement is cached by the sequence's name alone.
    name = compiler.preparer.format_sequence(element.sequence)
    before = "state.last_value - pg_sequence.seqincrement"
    return (
        "SELECT CASE WHEN state.is_called THEN state.last_value "
        f"WHEN state.last_value <> pg_sequence.seqstart THEN {before} END "
        f"FROM {name} AS state JOIN pg_catalog.pg_sequence "
        "ON pg_sequence.seqrelid = state.tableoid"
    )


@compiles(CurrentValue, "mysql")
@compiles(CurrentValue, "mariadb")
def _current_value_mariadb(element: CurrentValue, compiler: SQLCompiler, **kw: Any) -> str:
    # A MariaDB sequence is a one-row table; values up to next_not_cached_value are taken.
    # ALTER SEQUENCE ... RESTART WITH and SETVAL set next_not_cached_value (RESTART zeroes
    # cycle_count), so a restart at the start reads as unused there too.
    name = compiler.preparer.format_sequence(element.sequence)
    taken = "next_not_cached_value <> start_value OR cycle_count > 0"
    return f"SELECT CASE WHEN {taken} THEN next_not_cached_value - increment END FROM {name}"


@compiles(CurrentValue, "oracle")
def _current_value_oracle(element: CurrentValue, compiler: SQLCompiler, **kw: Any) -> str:
    # LAST_NUMBER is the next value not cached: the start when fresh, the value a RESTART
    # START WITH set. USER_SEQUENCES shows no START WITH, but mortar_seq creates every
    # sequence starting at its MINVALUE (MAXVALUE going down): see native._database_sequence.
    # The catalog holds an unquoted name in upper case: denormalize_name says how it is stored.
    stored = compiler.dialect.denormalize_name(element.sequence.name)
    name = compiler.process(sa.literal(stored), **kw)
    start = "CASE WHEN increment_by > 0 THEN min_value ELSE max_value END"
    return (
        f"SELECT CASE WHEN last_number <> {start} THEN last_number - increment_by END "
        f"FROM user_sequences WHERE sequence_name = {name}"
    )


class BoundedInsert(Insert):
    """An INSERT whose lock waits are bounded to ``seconds``, in the same one statement."""

    inherit_cache = False  # rare (first uses): never cached
    seconds = 1


def bounds_one_statement(dialect: Dialect) -> bool:
    """Tell whether `BoundedInsert` compiles here: else bound waits with `lock_wait`'s setting."""
    # MariaDB's SET STATEMENT; MySQL has no such clause for this variable.
    return bool(getattr(dialect, "is_mariadb", False))


@compiles(BoundedInsert, "mysql")
@compiles(BoundedInsert, "mariadb")
def _bounded_insert_mariadb(element: BoundedInsert, compiler: SQLCompiler, **kw: Any) -> str:
    insert = cast(Any, compiler).visit_insert(element, **kw)  # the plain INSERT
    return f"SET STATEMENT innodb_lock_wait_timeout={int(element.seconds)} FOR {insert}"


class RestartSequence(ExecutableDDLElement):
    """ALTER a SEQUENCE so that its next value is *value*."""

    inherit_cache = False

    def __init__(self, sequence: sa.Sequence, value: int) -> None:
        self.sequence, self.value = sequence, value


@compiles(RestartSequence, "postgresql")
@compiles(RestartSequence, "mysql")
@compiles(RestartSequence, "mariadb")
def _restart_postgresql(element: RestartSequence, compiler: DDLCompiler, **kw: Any) -> str:
    # MariaDB 10.3+ takes PostgreSQL's form; int() keeps anything but a number out.
    name = compiler.preparer.format_sequence(element.sequence)
    return f"ALTER SEQUENCE {name} RESTART WITH {int(element.value)}"


@compiles(RestartSequence, "oracle")
def _restart_oracle(element: RestartSequence, compiler: DDLCompiler, **kw: Any) -> str:
    # Oracle 18c and later (RESTART alone would go back to the sequence's own START WITH).
    name = compiler.preparer.format_sequence(element.sequence)
    return f"ALTER SEQUENCE {name} RESTART START WITH {int(element.value)}"


# Dialects whose SEQUENCE caches belong to each connection: values one connection cached
# stay its own after ALTER SEQUENCE ... RESTART. MariaDB and Oracle share one cache per
# sequence, which a RESTART empties.
_CACHES_PER_CONNECTION = frozenset({"postgresql"})


def caches_per_connection(dialect: Dialect) -> bool:
    """Tell whether each connection keeps its own cache of a SEQUENCE's values."""
    return dialect.name in _CACHES_PER_CONNECTION


def sequence_refusal(dialect: Dialect, sequence: sa.Sequence) -> str | None:
    """Say why *dialect*'s database would refuse CREATE SEQUENCE for *sequence*, else None.

    None too where mortar_seq knows none of the database's limits.
    """
    if getattr(dialect, "is_mariadb", False):  # behind mysql:// too
        return _mariadb_refusal(sequence)
    refusal = _SEQUENCE_REFUSALS.get(dialect.name)
    return None if refusal is None else refusal(sequence)


def _bounds(sequence: sa.Sequence, lowest: int, highest: int) -> tuple[int, int]:
    """MINVALUE and MAXVALUE, with the database's defaults (*lowest*, *highest*) where left out."""
    low = lowest if sequence.minvalue is None else sequence.minvalue
    return low, highest if sequence.maxvalue is None else sequence.maxvalue


def _postgresql_refusal(sequence: sa.Sequence) -> str | None:
    low, high = _bounds(sequence, INT64_MIN, INT64_MAX)
    if low >= high:
        return f"PostgreSQL says MINVALUE ({low}) must be less than MAXVALUE ({high})"
    return None


# MariaDB's default CACHE, and the absolute INCREMENT BY above which no CACHE fits (below).
_MARIADB_CACHE = 1000
_MARIADB_STEP_MAX = INT64_MAX // 3


def _mariadb_refusal(sequence: sa.Sequence) -> str | None:
    # sequence_definition::check_and_adjust (sql/sql_sequence.cc), error 4085 "Sequence ...
    # has out of range value for options"; -9223372036854775808 is even a syntax error.
    low, high = _bounds(sequence, INT64_MIN + 1, INT64_MAX - 1)
    if not INT64_MIN < low < high < INT64_MAX:
        return (
            f"MariaDB needs MINVALUE below MAXVALUE, both from {INT64_MIN + 1} to "
            f"{INT64_MAX - 1}, and this one would run from MINVALUE {low} to MAXVALUE {high}"
        )
    # So that CACHE * INCREMENT BY never overflows: CACHE < (2**63 - 1 - |step|) / |step|.
    step = abs(sequence.increment or 1)  # left out, it is 1
    if step > _MARIADB_STEP_MAX:
        return (
            f"MariaDB needs CACHE times INCREMENT BY within 64 bits, and INCREMENT BY "
            f"{sequence.increment} leaves room for no CACHE: it must lie within "
            f"±{_MARIADB_STEP_MAX} there"
        )
    most = (INT64_MAX - step) // step - 1
    cache = _MARIADB_CACHE if sequence.cache is None else sequence.cache
    if cache > most:
        default = " (its default)" if sequence.cache is None else ""
        return (
            f"MariaDB needs CACHE times INCREMENT BY within 64 bits, and CACHE {cache}{default} "
            f"is too many with INCREMENT BY {sequence.increment}: give cache={most} or less"
        )
    return None


# Oracle's documented limits (CREATE SEQUENCE; no server here): numbers of up to 28 digits.
_ORACLE_LOWEST = -(10**27 - 1)
_ORACLE_HIGHEST = 10**28 - 1
_ORACLE_CACHE = 20


def _oracle_refusal(sequence: sa.Sequence) -> str | None:
    low, high = _bounds(sequence, _ORACLE_LOWEST, _ORACLE_HIGHEST)
    step = abs(sequence.increment or 1)  # left out, it is 1
    if low >= high:
        return "Oracle says ORA-04004: minimum value must be less than maximum value"
    if step >= high - low:
        return (
            f"Oracle says ORA-04005: INCREMENT must be less than MAXVALUE minus MINVALUE "
            f"({step} is not less than {high} - {low})"
        )
    # CACHE from 2 to below CEIL((MAXVALUE - MINVALUE) / |INCREMENT BY|), the docs' formula.
    most = -(-(high - low) // step) - 1
    cache = _ORACLE_CACHE if sequence.cache is None else sequence.cache
    if 2 <= cache <= most:
        return None
    said = (
        "ORA-04010: the number of values to CACHE must be greater than 1"
        if cache < 2
        else "ORA-04013: number to CACHE must be less than one cycle"
    )
    fix = f"give cache=2 to cache={most}" if most >= 2 else "no CACHE fits so short a cycle"
    return f"Oracle says {said} (CACHE {cache}): {fix}"


_SEQUENCE_REFUSALS: dict[str, Callable[[sa.Sequence], str | None]] = {
    "postgresql": _postgresql_refusal,
    "oracle": _oracle_refusal,
}


class SetSequenceValue(Executable, ClauseElement):
    """Move a SEQUENCE forward so that its next value is *value*, without DDL."""

    inherit_cache = False

    def __init__(self, sequence: sa.Sequence, value: int) -> None:
        self.sequence, self.value = sequence, value


@compiles(SetSequenceValue, "mysql")
@compiles(SetSequenceValue, "mariadb")
def _set_value_mariadb(element: SetSequenceValue, compiler: SQLCompiler, **kw: Any) -> str:
    # is_used = 0: *value* is the next one handed out. MariaDB ignores a move backwards.
    name = compiler.preparer.format_sequence(element.sequence)
    return f"SELECT SETVAL({name}, {int(element.value)}, 0)"


def ddl_lock_wait(connection: Connection, seconds: Any) -> Any:
    """Bound how long DDL on *connection* waits for metadata locks (MariaDB); return the old."""
    previous = connection.execute(sa.text("SELECT @@SESSION.lock_wait_timeout")).scalar_one()
    connection.execute(
        sa.text("SET SESSION lock_wait_timeout = :seconds"), {"seconds": int(seconds)}
    )
    return previous


class Remembered(FunctionElement[int]):
    """A counter's new value, also kept as the statement's ``LAST_INSERT_ID`` (MySQL, MariaDB).

    The driver reports it as the cursor's ``lastrowid``: an UPDATE then hands back what it
    wrote without a second statement. ``LAST_INSERT_ID`` is an unsigned 64-bit number, so
    the value goes through it as its two's complement (see `remembered_value`).
    """

    name = "mortar_seq_remembered"
    type = sa.BigInteger()
    inherit_cache = True


@compiles(Remembered, "mysql")
@compiles(Remembered, "mariadb")
def _remembered_mysql(element: Remembered, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    # Documented idiom: https://mariadb.com/kb/en/last_insert_id/ (LAST_INSERT_ID(expr)).
    # CAST AS UNSIGNED maps a negative value to its two's complement; AS SIGNED maps it back.
    return f"CAST(LAST_INSERT_ID(CAST({value} AS UNSIGNED)) AS SIGNED)"


def remembers_written_value(dialect: Dialect) -> bool:
    """Tell whether an UPDATE can hand back the value it wrote as ``lastrowid`` (`Remembered`)."""
    # No SQLAlchemy flag says so: it is what MySQL's and MariaDB's drivers report.
    return dialect.name in {"mysql", "mariadb"}


def remembered_value(lastrowid: int) -> int:
    """Return the signed 64-bit value a `Remembered` wrote, from the driver's unsigned one."""
    return lastrowid - 2**64 if lastrowid >= 2**63 else lastrowid


# Dialects that run INSERT or UPDATE inside WITH (data-modifying CTEs). SQLite and MySQL
# refuse them; no SQLAlchemy flag says which do.
_DML_IN_CTE = frozenset({"postgresql"})


def modifies_in_cte(dialect: Dialect) -> bool:
    """Tell whether one statement can update a counter and insert rows numbered from it."""
    return dialect.name in _DML_IN_CTE
