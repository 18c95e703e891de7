"""Connect-time faults, on real servers in the states a restart or a failover goes through.

Each test puts a private server (a free loopback port, a temporary folder) in one state and
opens NEW connections to it with each driver, alone and under SQLAlchemy:
``worth_retrying`` must say yes to whatever each raises, and ``run_in_transaction`` (or
``run_in_transaction_async``) must ride the state out once the server is back, committing
the unit of work once. The class and message each driver gave (PostgreSQL 15, MariaDB
10.11, Galera 4) are in each test's docstring. psycopg attaches no SQLSTATE to a failed
connection, so for it the message decides; asyncpg says 57P03 (cannot_connect_now).

The PostgreSQL states are made to last until the test ends them: a session kept open
(smart shutdown), a backend stopped with SIGSTOP (crash of another backend), a
``restore_command`` that waits for a file (startup, recovery before a consistent state).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

import mortar_seq
from mortar_seq import (
    get_last_value,
    get_next_value,
    run_in_transaction,
    run_in_transaction_async,
    worth_retrying,
)

from .conftest import fresh_registry
from .galera import INSTALL_DB, MARIADBD, galera_cluster, install_data
from .private_cluster import PrivateCluster, private_cluster, server_binaries
from .servers import free_port, require, wait_until

# xdist_group: under pytest-xdist one worker runs these, and the other private servers' tests,
# one at a time.
pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.xdist_group("cluster")]

SEQUENCE = "invoice"
RIDE_OUT_SECONDS = 30
WAL_SEGMENT = 16 * 1024 * 1024  # initdb's default
MARIADB_DATABASE = "mortar_seq_faults"


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    with fresh_registry():
        yield


def take(connection: sa.Connection) -> int:
    """The unit of work: the next value of the gapless sequence SEQUENCE."""
    return get_next_value(connection, SEQUENCE)


def last_value(url: URL) -> int:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            return get_last_value(connection, SEQUENCE) or 0
    finally:
        engine.dispose()


def prepare(url: URL) -> int:
    """Create the library's tables and the sequence behind *url*; return its last value."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        mortar_seq.create_tables(engine)
        with engine.begin() as connection:
            take(connection)
    finally:
        engine.dispose()
    return last_value(url)


def driver_error(error: BaseException) -> BaseException:
    return error.orig if isinstance(error, DBAPIError) and error.orig is not None else error


def assert_transient(errors: dict[str, BaseException], message: str) -> None:
    """Each driver's connect-time *errors* say *message* and are worth retrying."""
    assert errors
    for driver, error in errors.items():
        assert message in str(error), (driver, error)
        assert worth_retrying(error), (driver, type(error), error)
        # and the driver's own, as zope.sqlalchemy hands it over
        assert worth_retrying(driver_error(error)), (driver, type(driver_error(error)))


def ride_out(
    unit: Callable[[], int], errors: list[BaseException], end_fault: Callable[[], None]
) -> int:
    """Run *unit* (a call of the retry helper) while the fault lasts, end the fault once an
    attempt has met it (*errors* is filled by the engine's handle_error), and return what
    the unit returned."""
    done = threading.Event()
    failed: list[BaseException] = []

    def ender() -> None:
        try:
            wait_until(lambda: bool(errors) or done.is_set(), "a failed attempt", RIDE_OUT_SECONDS)
            end_fault()
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=ender)
    thread.start()
    try:
        return unit()
    finally:
        done.set()
        thread.join()
        if failed:
            raise failed[0]


def record_errors(engine: Engine) -> list[BaseException]:
    """The errors the engine meets from now on, as SQLAlchemy raises them."""
    seen: list[BaseException] = []

    @sa.event.listens_for(engine, "handle_error")
    def keep(context: sa.engine.ExceptionContext) -> None:
        seen.append(context.sqlalchemy_exception or context.original_exception)

    return seen


def assert_ridden_out(errors: list[BaseException], message: str) -> None:
    assert errors, "no attempt failed: the fault was over before the unit began"
    assert any(message in str(error) for error in errors), errors
    assert all(worth_retrying(error) for error in errors), errors


def take_through_the_fault(
    engine: Engine, end_fault: Callable[[], None], before: int, message: str
) -> None:
    """Take a value with the retry helper while the fault lasts, end the fault once an
    attempt has met it (saying *message*), and check the value is the next one and every
    error met was worth retrying."""
    errors = record_errors(engine)
    value = ride_out(
        lambda: run_in_transaction(engine, take, timeout=RIDE_OUT_SECONDS), errors, end_fault
    )
    assert value == before + 1
    assert_ridden_out(errors, message)


# -- PostgreSQL ----------------------------------------------------------------------------


def as_postgres(*command: str) -> None:
    # PostgreSQL refuses to run as root: run it as the postgres account there.
    if os.geteuid() == 0:
        command = ("runuser", "-u", "postgres", "--", *command)
    subprocess.run(command, check=True, capture_output=True)


@pytest.fixture(scope="module")
def postgresql() -> Iterator[PrivateCluster]:
    found = server_binaries()
    # pg_ctl may be a link in PATH: the other server tools sit beside its target.
    binaries = None if found is None else (found / "pg_ctl").resolve().parent
    require(binaries, binaries and binaries / "pg_basebackup")
    assert binaries is not None
    with private_cluster(binaries) as server:
        engine = sa.create_engine(server.url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        with engine.connect() as connection:
            # A crash recovery fsyncs the whole data folder first (1.5 s here) unless fsync is
            # off; the standbys copy the setting (postgresql.auto.conf).
            connection.exec_driver_sql("ALTER SYSTEM SET fsync = off")
            connection.exec_driver_sql("SELECT pg_reload_conf()")
        engine.dispose()
        prepare(server.url)
        yield server


def pg_connect_errors(url: URL) -> dict[str, BaseException]:
    """Open a new connection with psycopg and asyncpg, alone and under SQLAlchemy; return
    what each raised (the test fails where one connects)."""
    errors: dict[str, BaseException] = {}

    def attempt(name: str, connect: Callable[[], Any]) -> None:
        try:
            connect()
        except Exception as exc:
            errors[name] = exc
        else:
            pytest.fail(f"{name} connected to {url}")

    def sqlalchemy_psycopg() -> None:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            engine.connect().close()
        finally:
            engine.dispose()

    async def sqlalchemy_asyncpg() -> None:
        engine = create_async_engine(url.set(drivername="postgresql+asyncpg"))
        try:
            await (await engine.connect()).close()
        finally:
            await engine.dispose()

    async def plain_asyncpg() -> None:
        await (await asyncpg.connect(host=url.host, port=url.port, user=url.username)).close()

    attempt("sqlalchemy+psycopg", sqlalchemy_psycopg)
    attempt("psycopg", lambda: psycopg.connect(host=url.host, port=url.port, user=url.username))
    attempt("sqlalchemy+asyncpg", lambda: asyncio.run(sqlalchemy_asyncpg()))
    attempt("asyncpg", lambda: asyncio.run(plain_asyncpg()))
    return errors


def refusal(url: URL) -> str:
    """What a new psycopg connection to *url* is refused with now; "" where it connects."""
    try:
        psycopg.connect(host=url.host, port=url.port, user=url.username).close()
    except psycopg.OperationalError as exc:
        return str(exc)
    return ""


def running(server: PrivateCluster) -> bool:
    return (server.folder / "data" / "postmaster.pid").exists()


def start(server: PrivateCluster, *options: str, wait: bool = True) -> None:
    settings = ["-o", " ".join(options)] if options else []
    log = str(server.folder / "server.log")
    server.pg_ctl(*settings, "-l", log, *([] if wait else ["-W"]), "start")


def back_up(server: PrivateCluster) -> None:
    """Leave *server* running and answering, whatever the test did to it."""
    if not running(server):
        start(server)
    wait_until(lambda: not refusal(server.url), "the private PostgreSQL server", 60)


@dataclass
class Gate:
    """A ``restore_command`` that holds recovery until the test opens the gate: it waits for
    a file, then says that the archive lacks the WAL file, so recovery goes on from
    pg_wal. History files and the segments named in *passing* go through at once."""

    folder: Path
    passing: tuple[str, ...] = ()

    @classmethod
    def beside(cls, server: PrivateCluster, *passing: str) -> Gate:
        folder = Path(tempfile.mkdtemp(dir=server.folder, prefix="gate_"))
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        return cls(folder, passing)

    def setting(self) -> str:
        script = self.folder / "restore_command.sh"
        cases = "|".join(["*.history", *self.passing])
        script.write_text(
            "#!/bin/sh\n"
            f'case "$1" in {cases}) exit 1;; esac\n'
            f"while [ ! -e {self.folder / 'open'} ]; do sleep 0.05; done\n"
            "exit 1\n"
        )
        script.chmod(0o755)
        return f"-c restore_command='{script} %f %p'"

    def open(self) -> None:
        (self.folder / "open").touch()


@contextmanager
def standby_of(primary: PrivateCluster) -> Iterator[PrivateCluster]:
    """A streaming standby of *primary* (``pg_basebackup -R``), not started; removed after."""
    folder = Path(tempfile.mkdtemp(prefix="mortar_seq_pg_standby_"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    standby = PrivateCluster(primary.binaries, folder, free_port())
    try:
        as_postgres(
            str(primary.binaries / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(folder / "data"),
            "-R",
            "--checkpoint=fast",
            "--no-sync",
        )
        yield standby
    finally:
        if running(standby):
            with suppress(subprocess.CalledProcessError):
                standby.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def promote(server: PrivateCluster) -> None:
    as_postgres(str(server.binaries / "pg_ctl"), "-D", str(server.folder / "data"), "-w", "promote")


def test_postgresql_shutting_down(postgresql: PrivateCluster) -> None:
    """``pg_ctl stop -m smart`` while a session stays open: new connections are refused until
    that session ends, then the server stops; the helper rides it out until it is started
    again (psycopg).

    Seen: psycopg.OperationalError 'connection failed: connection to server at "127.0.0.1",
    port N failed: FATAL:  the database system is shutting down' (sqlstate None), under
    SQLAlchemy sqlalchemy.exc.OperationalError; asyncpg.exceptions.CannotConnectNowError 'the
    database system is shutting down' (sqlstate 57P03), under SQLAlchemy
    sqlalchemy.exc.DBAPIError wrapping AsyncAdapt_asyncpg_dbapi.Error (sqlstate 57P03).
    Then, once stopped: 'Connection refused' (psycopg), ConnectionRefusedError (asyncpg).
    """
    url = postgresql.url
    before = last_value(url)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    held = engine.connect()
    try:
        held.exec_driver_sql("SELECT 1")
        postgresql.pg_ctl("-m", "smart", "-W", "stop")
        wait_until(lambda: "shutting down" in refusal(url), "the smart shutdown", 30)
        assert_transient(pg_connect_errors(url), "the database system is shutting down")

        def end_fault() -> None:
            held.close()
            wait_until(lambda: not running(postgresql), "the end of the smart shutdown", 30)
            start(postgresql)

        take_through_the_fault(engine, end_fault, before, "the database system is shutting down")
    finally:
        held.close()
        engine.dispose()
        back_up(postgresql)


def test_postgresql_in_recovery_mode(postgresql: PrivateCluster) -> None:
    """A backend killed with SIGKILL: the postmaster ends every session and recovers from the
    crash (restart_after_crash); one backend stopped with SIGSTOP keeps it waiting until
    the test lets it go. asyncpg's helper rides it out.

    Seen: psycopg.OperationalError '... FATAL:  the database system is in recovery mode'
    (sqlstate None), under SQLAlchemy sqlalchemy.exc.OperationalError;
    asyncpg.exceptions.CannotConnectNowError 'the database system is in recovery mode'
    (sqlstate 57P03), under SQLAlchemy sqlalchemy.exc.DBAPIError (sqlstate 57P03).
    """
    url = postgresql.url
    before = last_value(url)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    stopped, killed = engine.connect(), engine.connect()
    stopped_pid = int(stopped.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    killed_pid = int(killed.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    os.kill(stopped_pid, signal.SIGSTOP)
    try:
        os.kill(killed_pid, signal.SIGKILL)
        wait_until(lambda: "in recovery mode" in refusal(url), "the crash recovery", 30)
        assert_transient(pg_connect_errors(url), "the database system is in recovery mode")

        async_engine = create_async_engine(
            url.set(drivername="postgresql+asyncpg"), poolclass=sa.NullPool
        )
        errors = record_errors(async_engine.sync_engine)

        async def work(connection: AsyncConnection) -> int:
            return await connection.run_sync(take)

        async def unit() -> int:
            try:
                return await run_in_transaction_async(async_engine, work, timeout=RIDE_OUT_SECONDS)
            finally:
                await async_engine.dispose()

        value = ride_out(
            lambda: asyncio.run(unit()), errors, lambda: os.kill(stopped_pid, signal.SIGCONT)
        )
        assert value == before + 1
        assert_ridden_out(errors, "the database system is in recovery mode")
    finally:
        with suppress(ProcessLookupError):
            os.kill(stopped_pid, signal.SIGCONT)
        stopped.invalidate()
        killed.invalidate()
        engine.dispose()
        back_up(postgresql)


def test_postgresql_starting_up(postgresql: PrivateCluster) -> None:
    """Started for an archive recovery (``recovery.signal``) whose restore_command has not
    answered yet: the startup process has not read the checkpoint record, the postmaster
    is starting up. Once the gate opens, recovery ends on a new timeline and the server
    takes writes; the helper rides it out (psycopg).

    Seen: psycopg.OperationalError '... FATAL:  the database system is starting up'
    (sqlstate None), under SQLAlchemy sqlalchemy.exc.OperationalError;
    asyncpg.exceptions.CannotConnectNowError 'the database system is starting up' (sqlstate
    57P03), under SQLAlchemy sqlalchemy.exc.DBAPIError (sqlstate 57P03).
    """
    url = postgresql.url
    before = last_value(url)
    gate = Gate.beside(postgresql)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        postgresql.pg_ctl("-m", "fast", "stop")
        recovery = postgresql.folder / "data" / "recovery.signal"
        recovery.touch()
        if os.geteuid() == 0:
            shutil.chown(recovery, "postgres")
        start(postgresql, gate.setting(), wait=False)
        wait_until(lambda: "starting up" in refusal(url), "the startup", 30)
        assert_transient(pg_connect_errors(url), "the database system is starting up")

        take_through_the_fault(engine, gate.open, before, "the database system is starting up")
    finally:
        gate.open()
        engine.dispose()
        back_up(postgresql)


def write_wal(url: URL) -> str:
    """A checkpoint, then rows over three WAL segments; return the LSN written up to."""
    engine = sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("CHECKPOINT")
            connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS wal_filler (n integer)")
            fill = "INSERT INTO wal_filler SELECT generate_series(1, 1000)"
            for _ in range(2):
                connection.exec_driver_sql(fill)
                connection.exec_driver_sql("SELECT pg_switch_wal()")
            connection.exec_driver_sql(fill)
            return str(connection.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar_one())
    finally:
        engine.dispose()


def replayed(url: URL, lsn: str) -> bool:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            query = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"
            return bool(connection.exec_driver_sql(query, (lsn,)).scalar_one())
    finally:
        engine.dispose()


def control_data(server: PrivateCluster) -> dict[str, str]:
    found = subprocess.run(
        [str(server.binaries / "pg_controldata"), str(server.folder / "data")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = (line.partition(":") for line in found.splitlines())
    return {name.strip(): value.strip() for name, _, value in lines}


def segment(lsn: str) -> int:
    high, low = lsn.split("/")
    return ((int(high, 16) << 32) + int(low, 16)) // WAL_SEGMENT


def test_postgresql_not_yet_consistent(postgresql: PrivateCluster) -> None:
    """A hot standby started again after a fast shutdown must replay WAL up to where it had
    been (its minimum recovery point) before it takes connections; a restore_command that
    holds the segment after the first one keeps it there. Once the gate opens and the
    standby is promoted, the helper rides it out (psycopg).

    Seen: psycopg.OperationalError '... FATAL:  the database system is not yet accepting
    connections\\nDETAIL:  Consistent recovery state has not been yet reached.' (sqlstate
    None), under SQLAlchemy sqlalchemy.exc.OperationalError;
    asyncpg.exceptions.CannotConnectNowError with the same message and detail (sqlstate
    57P03), under SQLAlchemy sqlalchemy.exc.DBAPIError (sqlstate 57P03).
    """
    before = last_value(postgresql.url)
    with standby_of(postgresql) as standby:
        start(standby)
        lsn = write_wal(postgresql.url)
        wait_until(lambda: replayed(standby.url, lsn), "the standby's replay", 30)
        standby.pg_ctl("-m", "fast", "stop")
        control = control_data(standby)
        redo = control["Latest checkpoint's REDO location"]
        minimum = control["Minimum recovery ending location"]
        assert segment(minimum) > segment(redo), control  # else it is consistent at once
        gate = Gate.beside(standby, control["Latest checkpoint's REDO WAL file"])
        start(standby, gate.setting(), wait=False)
        url = standby.url
        wait_until(lambda: "not yet accepting" in refusal(url), "recovery before consistency", 30)
        assert_transient(
            pg_connect_errors(url), "the database system is not yet accepting connections"
        )

        def end_fault() -> None:
            gate.open()
            promote(standby)

        engine = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            take_through_the_fault(
                engine, end_fault, before, "the database system is not yet accepting connections"
            )
        finally:
            gate.open()
            engine.dispose()


def test_postgresql_standby_without_hot_standby(postgresql: PrivateCluster) -> None:
    """A standby started with hot_standby = off refuses every connection for as long as it
    is a standby; promoted, it takes them, and the helper rides it out (psycopg).

    Seen: psycopg.OperationalError '... FATAL:  the database system is not accepting
    connections\\nDETAIL:  Hot standby mode is disabled.' (sqlstate None), under SQLAlchemy
    sqlalchemy.exc.OperationalError; asyncpg.exceptions.CannotConnectNowError with the same
    message and detail (sqlstate 57P03), under SQLAlchemy sqlalchemy.exc.DBAPIError
    'the database system is not accepting connections' (sqlstate 57P03).
    """
    before = last_value(postgresql.url)
    with standby_of(postgresql) as standby:
        start(standby, "-c hot_standby=off", wait=False)
        url = standby.url
        wait_until(lambda: "not accepting" in refusal(url), "the standby", 30)
        assert_transient(pg_connect_errors(url), "the database system is not accepting connections")
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            take_through_the_fault(
                engine,
                lambda: promote(standby),
                before,
                "the database system is not accepting connections",
            )
        finally:
            engine.dispose()


# -- MariaDB and Galera --------------------------------------------------------------------


def mysql_connect_errors(url: URL, first: str = "SELECT 1") -> dict[str, BaseException]:
    """Open a new connection with PyMySQL, alone and under SQLAlchemy, and run *first* on
    it; return what each raised (the test fails where both work)."""
    errors: dict[str, BaseException] = {}
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(first)
    except DBAPIError as exc:
        errors["sqlalchemy+pymysql"] = exc
    finally:
        engine.dispose()
    try:
        plain = pymysql.connect(
            host=url.host, port=url.port, user=url.username, database=url.database
        )
        try:
            plain.cursor().execute(first)
        finally:
            plain.close()
    except pymysql.err.Error as exc:
        errors["pymysql"] = exc
    assert set(errors) == {"sqlalchemy+pymysql", "pymysql"}, errors
    return errors


@dataclass
class MariaDB:
    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> URL:
        return URL.create(
            "mysql+pymysql",
            username="root",
            host="127.0.0.1",
            port=self.port,
            database=MARIADB_DATABASE,
        )

    def start(self) -> None:
        command = [
            MARIADBD,
            "--no-defaults",
            f"--datadir={self.folder / 'data'}",
            f"--socket={self.folder / 'mariadb.sock'}",
            f"--pid-file={self.folder / 'mariadb.pid'}",
            f"--log-error={self.folder / 'error.log'}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--user=mysql",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            # A slow shutdown: InnoDB purges every deleted row first, so the test has time
            # to connect while the server shuts down.
            "--innodb-fast-shutdown=0",
        ]
        with (self.folder / "stdout.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.answers, "the private MariaDB server", 60)

    def answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            tail = (self.folder / "error.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the private MariaDB server exited:\n{tail}")
        try:
            pymysql.connect(host="127.0.0.1", port=self.port, user="root").close()
        except pymysql.err.Error:
            return False
        return True


@pytest.fixture
def mariadb() -> Iterator[MariaDB]:
    require(MARIADBD, INSTALL_DB)
    folder = Path(tempfile.mkdtemp(prefix="mortar_seq_mariadb_"))
    server = MariaDB(folder, free_port())
    try:
        (folder / "data").mkdir()
        install_data(folder, folder / "data")
        server.start()
        admin = pymysql.connect(host="127.0.0.1", port=server.port, user="root")
        with admin:
            admin.cursor().execute(f"CREATE DATABASE {MARIADB_DATABASE}")
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.kill()
            server.process.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


def test_mariadb_shutting_down(mariadb: MariaDB) -> None:
    """``SHUTDOWN`` while the server has deleted rows to purge (a slow shutdown): MariaDB
    closes its listening socket first, so a new connection is refused while the server
    shuts down, and an open session finds its connection lost. The helper rides it out
    until the server is started again.

    Seen: pymysql.err.OperationalError (2003, "Can't connect to MySQL server on '127.0.0.1'
    ([Errno 111] Connection refused)"), under SQLAlchemy sqlalchemy.exc.OperationalError;
    on the session left open, (2013, 'Lost connection to MySQL server during query'). Error
    1053 (Server shutdown in progress) never came, at connect time or on the open session.
    """
    url = mariadb.url
    before = prepare(url)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE ballast (id SERIAL, pad CHAR(200))")
        connection.exec_driver_sql("INSERT INTO ballast (pad) SELECT 'x' FROM seq_1_to_100000")
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM ballast")
    held = pymysql.connect(host=url.host, port=url.port, user=url.username)
    admin = pymysql.connect(host=url.host, port=url.port, user=url.username)
    with admin:
        admin.cursor().execute("SHUTDOWN")  # returns before the listening socket is closed
    wait_until(lambda: not mariadb.answers(), "the shutdown", 30)
    errors = mysql_connect_errors(url)
    assert mariadb.process is not None
    assert mariadb.process.poll() is None, "the server was down before the test connected"
    assert_transient(errors, "Connection refused")
    assert {driver_error(error).args[0] for error in errors.values()} == {2003}, errors
    with pytest.raises(pymysql.err.OperationalError) as lost:
        held.cursor().execute("SELECT 1")
    assert lost.value.args[0] in {2006, 2013}, lost.value  # seen: 2013
    assert worth_retrying(lost.value)

    def end_fault() -> None:
        assert mariadb.process is not None
        mariadb.process.wait(60)
        mariadb.start()

    try:
        take_through_the_fault(engine, end_fault, before, "Connection refused")
    finally:
        engine.dispose()


def cluster_status(url: URL) -> str:
    # PyMySQL alone: SQLAlchemy's first connection fails on a node out of the primary component.
    with pymysql.connect(host=url.host, port=url.port, user=url.username) as connection:
        cursor = connection.cursor()
        cursor.execute("SHOW STATUS LIKE 'wsrep_cluster_status'")
        return str(cursor.fetchone()[1])


def test_galera_node_not_ready() -> None:
    """The survivor of a 2-node Galera cluster whose other node was SIGKILLed holds no
    majority: it is out of the primary component (non-Primary), takes connections but
    refuses work until an operator bootstraps it (``pc.bootstrap=YES``). The helper rides
    it out.

    Seen: SQLAlchemy's connect fails in the ROLLBACK that ends the first connection's
    initialization, with sqlalchemy.exc.OperationalError wrapping
    pymysql.err.OperationalError (1047, 'WSREP has not yet prepared node for application
    use'), statement None. PyMySQL alone connects, and its first statement on a table
    raises the same 1047 (``SELECT 1`` and ``SHOW`` still work).
    """
    with galera_cluster(2) as cluster:
        one, two = cluster.nodes
        url = one.url()
        before = prepare(url)
        cluster.kill(two)
        wait_until(lambda: cluster_status(url) == "non-Primary", "the loss of quorum", 60)
        errors = mysql_connect_errors(url, "SELECT COUNT(*) FROM mortar_seq_counter")
        assert_transient(errors, "WSREP has not yet prepared node for application use")
        wrapped = errors["sqlalchemy+pymysql"]
        assert isinstance(wrapped, DBAPIError)
        assert wrapped.statement is None  # the ROLLBACK ending SQLAlchemy's first connect

        def bootstrap() -> None:
            with pymysql.connect(host=url.host, port=url.port, user=url.username) as admin:
                admin.cursor().execute("SET GLOBAL wsrep_provider_options = 'pc.bootstrap=YES'")

        engine = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            take_through_the_fault(
                engine, bootstrap, before, "WSREP has not yet prepared node for application use"
            )
        finally:
            engine.dispose()
