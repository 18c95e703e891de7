"""A database without the library's tables: nothing creates them uninvited, and every
first use says how to make them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import mortar_seq
from mortar_seq.cli import main

from . import test_migrations
from .conftest import fresh_registry
from .databases import Database
from .test_migrations import LIBRARY_TABLES, PAGE

application = test_migrations.application  # the fixture: an Alembic environment on it

CLI_HINTS = ("'alembic upgrade mortar_seq@head'", "'mortar-seq init'")
LIBRARY_HINTS = ("mortar_seq.create_tables(", "alembic upgrade mortar_seq@head")


@pytest.fixture
def empty(empty_database: Database) -> Iterator[Engine]:
    """An engine on a database with no table at all (an existing, empty SQLite file)."""
    engine = empty_database.engine()
    with engine.connect():
        pass  # SQLite makes its (empty) file on connecting
    with fresh_registry():
        yield engine
    engine.dispose()


def tables(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(sa.inspect(connection).get_table_names())


def cli(capsys: pytest.CaptureFixture[str], engine: Engine, *args: str) -> tuple[int, str, str]:
    status = main(["--url", engine.url.render_as_string(hide_password=False), *args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["last", "x"],
        ["next", "x"],
        ["delete", "x"],
        ["restart", "x", "5"],
        ["import", "django-sequences"],
    ],
    ids=lambda args: args[0],
)
def test_cli_creates_no_tables_and_says_how(
    empty: Engine, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    status, out, err = cli(capsys, empty, *args)
    assert (status, out) == (1, "")
    assert err.startswith("mortar-seq: no mortar_seq tables in '")
    assert all(hint in err for hint in CLI_HINTS), err
    assert err.count("\n") == 1
    assert tables(empty) == set()


def test_cli_names_the_one_table_missing(empty: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    mortar_seq.model.StoredSequence.__table__.create(empty)
    status, out, err = cli(capsys, empty, "list")
    assert (status, out) == (1, "")
    assert err.startswith("mortar-seq: no table mortar_seq_counter in '")
    assert tables(empty) == {"mortar_seq_sequence"}


def test_cli_init_makes_the_tables_and_create_still_does(
    empty: Engine, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli(capsys, empty, "init") == (0, "", "")
    assert tables(empty) == LIBRARY_TABLES
    assert cli(capsys, empty, "init") == (0, "", "")  # again: nothing to do
    assert cli(capsys, empty, "create", "x") == (0, "", "")
    assert cli(capsys, empty, "next", "x") == (0, "1\n", "")
    # The embedded default: init makes the file too, as create does.
    folder = tmp_path / "new"
    folder.mkdir()
    url = f"sqlite:///{folder / 'mortar_seq.sqlite'}"
    assert main(["--url", url, "init"]) == 0
    assert main(["--url", url, "list"]) == 0
    assert capsys.readouterr() == ("", "")


def test_cli_audit_needs_no_library_tables(
    empty: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = sa.Table("ledger", sa.MetaData(), sa.Column("number", sa.Integer))
    ledger.create(empty)
    with empty.begin() as connection:
        connection.execute(ledger.insert(), [{"number": 1}, {"number": 2}])
    assert cli(capsys, empty, "audit", "ledger", "number") == (
        0,
        "count\t2\nfirst\t1\nlast\t2\n",
        "",
    )
    assert tables(empty) == {"ledger"}


# Each first use of the library's tables, on a Session or on a Connection.
FIRST_USES: dict[str, Callable[[Session | sa.Connection], object]] = {
    "get_next_value": lambda s: mortar_seq.get_next_value(s, "x"),
    "get_next_values": lambda s: mortar_seq.get_next_values(s, 2, "x"),
    "get_last_value": lambda s: mortar_seq.get_last_value(s, "x"),
    "register_sequence": lambda s: mortar_seq.register_sequence("x", s),
    "register_template": lambda s: mortar_seq.register_template("T", "{k}-{counter}", s),
    "get_sequence": lambda s: mortar_seq.get_sequence("x", s),
    "get_template": lambda s: mortar_seq.get_template("T", s),
    "delete_sequence": lambda s: mortar_seq.delete_sequence(s, "x"),
}


@pytest.mark.parametrize("use", list(FIRST_USES))
@pytest.mark.parametrize("kind", ["session", "connection"])
def test_first_use_without_tables_says_how_to_make_them(empty: Engine, use: str, kind: str) -> None:
    with Session(empty) as session, session.begin():
        caller = session if kind == "session" else session.connection()
        with pytest.raises(mortar_seq.SequenceConfigError) as raised:
            FIRST_USES[use](caller)
    message = str(raised.value)
    assert "mortar_seq's tables are missing" in message
    assert all(hint in message for hint in LIBRARY_HINTS), message
    assert isinstance(raised.value.__cause__, sa.exc.DBAPIError)  # the driver's, kept
    assert tables(empty) == set()


def test_other_missing_tables_pass_through(engine: Engine) -> None:
    """Only the library's own tables are explained: a missing table of the caller's is the
    driver's error, untouched."""
    nowhere = sa.Table("nowhere", sa.MetaData(), sa.Column("number", sa.BigInteger))
    with engine.begin() as connection:
        sequence = mortar_seq.register_sequence("x", connection)
    with pytest.raises(sa.exc.DBAPIError) as raised, engine.begin() as connection:
        sequence.insert(connection, nowhere, {}, column="number")
    assert not isinstance(raised.value, mortar_seq.SequenceError)


def test_create_tables_refuses_async_binds_and_says_what_works() -> None:
    async def scenario() -> set[str]:
        async_engine = create_async_engine("sqlite+aiosqlite://")
        try:
            with pytest.raises(TypeError, match=r"AsyncEngine.*run_sync\(mortar_seq"):
                mortar_seq.create_tables(async_engine)  # type: ignore[arg-type]
            async with async_engine.begin() as connection:
                assert isinstance(connection, AsyncConnection)
                with pytest.raises(TypeError, match=r"AsyncConnection.*run_sync\(mortar_seq"):
                    mortar_seq.create_tables(connection)  # type: ignore[arg-type]
                await connection.run_sync(mortar_seq.create_tables)  # as the message says
                return set(await connection.run_sync(lambda c: sa.inspect(c).get_table_names()))
        finally:
            await async_engine.dispose()

    assert asyncio.run(scenario()) == LIBRARY_TABLES


def test_create_tables_refuses_a_session() -> None:
    session = Session(sa.create_engine("sqlite://"))
    with pytest.raises(TypeError, match=r"not a Session.*session\.connection\(\)"):
        mortar_seq.create_tables(session)  # type: ignore[arg-type]


class _Base(DeclarativeBase):
    pass


class _Numbered(_Base):
    __tablename__ = "schema_missing_numbered"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(sa.BigInteger, default=mortar_seq.column_default("nope"))


def test_column_default_of_an_unregistered_name_says_to_register(engine: Engine) -> None:
    _Base.metadata.create_all(engine)
    try:
        with Session(engine) as session:
            session.add(_Numbered())
            with pytest.raises(mortar_seq.UnknownSequence) as raised:
                session.flush()
    finally:
        _Base.metadata.drop_all(engine)
    message = str(raised.value)
    assert message.startswith("no sequence named 'nope' (nor a template)")
    assert "register_sequence" in message
    assert "register_template" in message
    assert "get_next_value" in message


def _page_stamp() -> str:
    """The page's ``alembic stamp`` line for tables made by create_tables."""
    (line,) = re.findall(r"^   \$ (alembic stamp \S+)$", PAGE.read_text(), flags=re.MULTILINE)
    return line


def test_tables_made_by_create_tables_join_alembic_as_the_page_says(
    application: Config,
) -> None:
    engine: Engine = application.attributes["engine"]
    mortar_seq.create_tables(engine)
    with engine.begin() as connection:
        mortar_seq.register_sequence("kept", connection)
        assert mortar_seq.get_sequence("kept", connection).next(connection) == 1
    # Without the stamp, Alembic would create them again.
    with pytest.raises(sa.exc.DBAPIError, match=r"(?i)already exists"):
        command.upgrade(application, "mortar_seq@head")

    _, verb, revision = _page_stamp().split()
    assert (verb, revision) == ("stamp", "mortar_seq@head")
    command.stamp(application, revision)
    command.check(application)  # the tables are what the migrations make
    command.upgrade(application, "mortar_seq@head")  # nothing left to do
    with engine.begin() as connection:
        assert mortar_seq.get_sequence("kept", connection).next(connection) == 2
