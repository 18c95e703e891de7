"""The library's tables: stored sequence definitions and their counters."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from .definition import NAME_MAX

KEY_MAX = 255

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_BYTEWISE_DIALECTS = frozenset({"mysql", "mariadb"})


class Name(TypeDecorator[str]):
    """Text compared exactly, case and trailing spaces included, on every database.

    MySQL and MariaDB collations fold case and pad trailing spaces, so that 'A', 'a' and
    'a ' would be one key: there the UTF-8 bytes are stored in a VARBINARY column.
    """

    impl = sa.String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _BYTEWISE_DIALECTS:
            return dialect.type_descriptor(mysql.VARBINARY(4 * self.length))
        return dialect.type_descriptor(sa.String(self.length))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is not None and dialect.name in _BYTEWISE_DIALECTS:
            return value.encode("utf-8")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, bytes):
            return value.decode("utf-8")
        return value  # type: ignore[no-any-return]


# A plain sequence's one counter has no key, stored as this rather than '': Oracle stores
# '' as NULL, which no primary-key column takes. No template's key can be it: each holds
# its counter's placeholder. (Alembic revision 3d9a5c0e7b12 converted existing rows.)
PLAIN_KEY = "-"


class CounterKey(Name):
    """A counter's key: a template's rendering, or '' (stored as `PLAIN_KEY`) for a plain one."""

    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        return super().process_bind_param(PLAIN_KEY if value == "" else value, dialect)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        text = super().process_result_value(value, dialect)
        return "" if text == PLAIN_KEY else text


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class StoredSequence(Base):
    """One row per sequence or template: implementation and settings, so any process can use it."""

    __tablename__ = "mortar_seq_sequence"

    name: Mapped[str] = mapped_column(Name(NAME_MAX), primary_key=True)
    impl: Mapped[str] = mapped_column(sa.String(40))
    options: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    start: Mapped[int] = mapped_column(sa.BigInteger)
    step: Mapped[int] = mapped_column(sa.BigInteger)
    reset: Mapped[int | None] = mapped_column(sa.BigInteger)
    pattern: Mapped[str | None] = mapped_column(sa.Text)  # templates only
    parent: Mapped[str | None] = mapped_column(Name(NAME_MAX))  # a template's parent template


class Counter(Base):
    """The last value handed out by one counter of a sequence (NULL before the first)."""

    __tablename__ = "mortar_seq_counter"

    name: Mapped[str] = mapped_column(Name(NAME_MAX), primary_key=True)
    key: Mapped[str] = mapped_column(CounterKey(KEY_MAX), primary_key=True)
    value: Mapped[int | None] = mapped_column(sa.BigInteger)


class CommitMarker(Base):
    """A unit of work's mark, written in its own transaction by `run_in_transaction`.

    Found after a COMMIT whose answer was lost, it proves that the COMMIT happened. Markers
    are deleted by later units of the same process, and swept after a day by any.
    """

    __tablename__ = "mortar_seq_commit_marker"

    token: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    written_at: Mapped[int] = mapped_column(sa.BigInteger, index=True)  # Unix time, seconds


def create_tables(bind: Engine | Connection) -> None:
    """Create the library's tables where they are missing.

    For tests and small applications; applications with Alembic use the shipped
    migrations instead. Given a `~sqlalchemy.engine.Connection`, the DDL runs in its
    transaction and is committed (or not) by the caller. With asyncio, run it through
    ``run_sync``:
    ``async with engine.begin() as conn: await conn.run_sync(mortar_seq.create_tables)``.
    """
    _refuse_bind(bind)
    Base.metadata.create_all(bind)


def _refuse_bind(bind: object) -> None:
    """Say what to pass instead of an async engine or connection, or a Session."""
    if isinstance(bind, Engine | Connection):
        return
    kind = type(bind).__name__
    if hasattr(bind, "sync_engine"):  # AsyncEngine, AsyncConnection
        raise TypeError(
            f"create_tables takes an Engine or a Connection, not an {kind}: "
            "async with engine.begin() as conn: await conn.run_sync(mortar_seq.create_tables)"
        )
    if isinstance(bind, Session):
        raise TypeError(
            "create_tables takes an Engine or a Connection, not a Session: pass "
            "session.connection() to create them in the session's transaction"
        )
    # Anything else may still run DDL (a mock engine that prints it): leave it to SQLAlchemy.
