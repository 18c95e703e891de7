"""Fixtures: every database test runs on SQLite, PostgreSQL and MariaDB.

Server URLs come from MORTAR_SEQ_TEST_POSTGRESQL and MORTAR_SEQ_TEST_MARIADB (defaults:
this machine's servers). Each run creates databases of its own and drops them afterwards.
Under CI=true an unreachable server fails the run; elsewhere its tests are skipped, loudly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import mortar_seq
from mortar_seq import registry as registry_module
from mortar_seq.db.side import side_engine
from mortar_seq.model import Base

from .databases import BACKENDS, IN_CI, Database, Unreachable, fresh_database
from .tables import test_metadata

SessionLike = Session | sa.Connection


@contextmanager
def reachable_database(backend: str, folder: Path) -> Iterator[Database]:
    """A fresh, empty database; an unreachable server fails the test under CI=true."""
    try:
        with fresh_database(backend, folder) as created:
            yield created
    except Unreachable as exc:
        if IN_CI:
            pytest.fail(f"CI=true and the server is unreachable: {exc}")
        pytest.skip(f"SERVER UNREACHABLE, its tests are skipped (CI=true fails instead): {exc}")


@pytest.fixture(scope="session", params=BACKENDS)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A database of this run with the library's and the tests' tables."""
    backend: str = request.param
    with reachable_database(backend, tmp_path_factory.mktemp(backend)) as created:
        engine = created.engine()
        mortar_seq.create_tables(engine)
        test_metadata.create_all(engine)
        engine.dispose()
        yield created


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database of this test's own, with no tables at all."""
    with reachable_database(request.param, tmp_path) as created:
        yield created


@pytest.fixture
def engine(database: Database) -> Iterator[Engine]:
    """An engine on a database whose tables are empty, with a fresh registry."""
    engine = database.engine()
    with engine.begin() as connection:
        for table in [*Base.metadata.sorted_tables, *test_metadata.sorted_tables]:
            connection.execute(table.delete())
    with engine.connect() as connection:
        if connection.dialect.supports_sequences:  # NativeSequence's objects, too
            for name in sa.inspect(connection).get_sequence_names():
                if name.startswith("mseq_"):
                    connection.execute(sa.schema.DropSequence(sa.Sequence(name)))
            connection.commit()
    with fresh_registry():
        yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def tenants(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Engines on two fresh databases of one backend (a database per tenant), with the
    library's tables, and a fresh registry."""
    with ExitStack() as stack:
        engines = []
        for folder in (tmp_path / "one", tmp_path / "two"):
            folder.mkdir()
            created = stack.enter_context(reachable_database(request.param, folder))
            engine = created.engine()
            stack.callback(engine.dispose)  # before its database is dropped
            mortar_seq.create_tables(engine)
            engines.append(engine)
        with fresh_registry():
            yield engines[0], engines[1]


@contextmanager
def fresh_registry() -> Iterator[None]:
    """Run the block with an empty process registry, as in a new process."""
    previous = registry_module.registry
    registry_module.registry = registry_module.Registry()
    try:
        yield
    finally:
        registry_module.registry = previous


@dataclass
class Caller:
    """How a test's code reaches the database: a Session or a Connection, committing each block
    (``commit``) or all inside one outer transaction that is never committed (``outer``)."""

    engine: Engine
    kind: str
    mode: str
    _outer: list[Any] = field(default_factory=list)

    def _open(self) -> AbstractContextManager[SessionLike]:
        if self.kind == "session":
            return _session_block(self.engine)
        return self.engine.begin()

    @contextmanager
    def block(self) -> Iterator[SessionLike]:
        if self.mode == "commit":
            with self._open() as session:
                yield session
            return
        if not self._outer:
            manager = self._open()
            self._outer[:] = [manager, manager.__enter__()]
        yield self._outer[1]

    def close(self) -> None:
        if self._outer:
            # Leaving with an error rolls the outer transaction back.
            undo = RuntimeError("end of test")
            self._outer[0].__exit__(RuntimeError, undo, None)


@contextmanager
def _session_block(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session, session.begin():
        yield session


@pytest.fixture(
    params=[
        ("session", "commit"),
        ("connection", "commit"),
        ("session", "outer"),
        ("connection", "outer"),
    ],
    ids=lambda p: "-".join(p),
)
def caller(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Caller]:
    kind, mode = request.param
    made = Caller(engine, kind, mode)
    yield made
    made.close()


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    """Collect the statements *engine* sends while the block runs, the library's own
    connections beside it included (see mortar_seq.db.side)."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    engines = {engine, side_engine(engine)}
    for each in engines:
        sa.event.listen(each, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        for each in engines:
            sa.event.remove(each, "before_cursor_execute", record)


def has_row_locks(engine: Engine) -> bool:
    # No SQLAlchemy flag says so: SQLite's writers share one database-wide lock.
    return engine.dialect.name != "sqlite"


def lock_wait_setting(connection: sa.Connection) -> Any:
    """The connection's current lock-wait bound, as the database reports it."""
    name = connection.dialect.name
    if name == "postgresql":
        return connection.exec_driver_sql("SHOW lock_timeout").scalar_one()
    if name == "sqlite":
        return connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    return connection.exec_driver_sql("SELECT @@SESSION.innodb_lock_wait_timeout").scalar_one()


def connection_of(session: Session | sa.Connection) -> sa.Connection:
    """The connection a Session or a Connection works on."""
    return session if isinstance(session, sa.Connection) else session.connection()


def at_once(works: list[Callable[[], object]]) -> list[BaseException | None]:
    """Run each of *works* in a thread of its own, started together; return what each raised."""
    barrier = threading.Barrier(len(works))
    outcomes: list[BaseException | None] = [None] * len(works)

    def run(index: int) -> None:
        barrier.wait(30)
        try:
            works[index]()
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(works))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


def started_and_blocked(second: Callable[[], None], events: list[Any]) -> threading.Thread:
    """Start *second* in a thread; return it once it has begun (it appends ``("two",
    "begin")`` to *events*) and is still waiting half a second later, behind a lock."""
    thread = threading.Thread(target=second)
    thread.start()
    while ("two", "begin") not in events:
        time.sleep(0.01)
    time.sleep(0.5)
    assert thread.is_alive()  # blocked behind the holder
    return thread
