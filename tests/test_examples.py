"""The framework recipes of docs/frameworks.rst: each app under examples/ runs on each
database, and the numbers it commits read 1..N with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import collections
import functools
import importlib.util
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from zope.sqlalchemy import datamanager

import mortar_seq

from .conftest import fresh_registry
from .databases import Database

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


@functools.cache
def example(folder: str) -> ModuleType:
    """Import ``examples/<folder>/app.py`` as a module of its own (once per process)."""
    spec = importlib.util.spec_from_file_location(f"example_{folder}", EXAMPLES / folder / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fresh(empty_database: Database) -> Iterator[Database]:
    """A database with no tables at all, and an empty registry, as a new application finds."""
    with fresh_registry():
        yield empty_database


def url_text(url: sa.URL) -> str:
    return url.render_as_string(hide_password=False)


def committed(engine: sa.Engine, column: str = "number") -> list[Any]:
    query = sa.select(sa.column(column)).select_from(sa.table("invoice"))
    with engine.connect() as connection:
        return list(connection.scalars(query.order_by(sa.column("number"))))


def test_flask(fresh: Database) -> None:
    app = example("flask_app").create_app(url_text(fresh.url))
    client = app.test_client()

    def post(index: int) -> Any:
        return client.post("/invoices", json={"customer": f"customer {index}"})

    with ThreadPoolExecutor(4) as pool:  # four requests at a time
        responses = list(pool.map(post, range(40)))
    assert [response.status_code for response in responses] == [201] * 40
    numbers = sorted(response.json["number"] for response in responses)
    with app.app_context():
        engine = example("flask_app").db.engine
        assert committed(engine) == numbers == list(range(1, 41))
        engine.dispose()


@pytest.mark.parametrize("empty_database", list(ASYNC_DRIVERS), indirect=True)
def test_fastapi_concurrent_requests(fresh: Database) -> None:
    url = fresh.url.set(drivername=ASYNC_DRIVERS[fresh.backend])
    if fresh.backend == "sqlite":
        url = url.update_query_dict({"timeout": "60"})  # as the page says an application must
    app = example("fastapi_app").create_app(url_text(url))
    requests = 200

    async def scenario() -> list[httpx.Response]:
        # httpx's AsyncClient does not run the application's lifespan (its setup): run it here.
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                posts = [
                    client.post("/invoices", json={"customer": f"customer {index}"})
                    for index in range(requests)
                ]
                return await asyncio.gather(*posts)

    responses = asyncio.run(scenario())
    assert [response.status_code for response in responses] == [201] * requests
    numbers = sorted(response.json()["number"] for response in responses)
    engine = fresh.engine()
    assert committed(engine) == numbers == list(range(1, requests + 1))
    engine.dispose()


def test_sqlmodel(fresh: Database) -> None:
    recipe = example("sqlmodel_app")
    engine = fresh.engine()
    recipe.setup(engine)
    invoices = [recipe.create_invoice(engine, f"customer {index}") for index in range(5)]
    assert [(invoice.number, invoice.customer) for invoice in invoices] == [
        (number, f"customer {number - 1}") for number in range(1, 6)
    ]
    assert committed(engine) == [1, 2, 3, 4, 5]
    engine.dispose()


@pytest.fixture
def zope_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The zope recipe; what its setup adds to zope.sqlalchemy's retry list is undone after."""
    monkeypatch.setattr(datamanager, "_retryable_errors", list(datamanager._retryable_errors))
    recipe = example("zope_app")
    yield recipe
    recipe.DBSession.remove()


def test_zope_transaction(fresh: Database, zope_app: ModuleType) -> None:
    engine = fresh.engine()
    zope_app.setup(engine)
    assert [zope_app.create_invoice(f"customer {index}") for index in range(3)] == [1, 2, 3]
    assert committed(engine, "customer") == ["customer 0", "customer 1", "customer 2"]
    engine.dispose()


# A short lock wait, ending with a lock timeout (SQLite: "database is locked") that
# zope.sqlalchemy alone does not retry: 0.2 s, and 1 s on MariaDB, its least.
SHORT_LOCK_WAIT = {
    "sqlite": {"timeout": 0.2},
    "postgresql": {"options": "-c lock_timeout=200"},
    "mariadb": {"init_command": "SET SESSION innodb_lock_wait_timeout = 1"},
}


def test_zope_transaction_runs_again_after_a_lock_timeout(
    fresh: Database, zope_app: ModuleType
) -> None:
    engine = fresh.engine(connect_args=SHORT_LOCK_WAIT[fresh.backend])
    zope_app.setup(engine)
    faults: list[BaseException] = []
    failed = threading.Event()

    @sa.event.listens_for(engine, "handle_error")
    def seen(context: sa.engine.ExceptionContext) -> None:
        faults.append(context.original_exception)
        failed.set()

    holding = threading.Event()

    def hold_the_series() -> None:
        # Takes a number and holds the series until a lock wait has failed, then rolls back.
        with engine.connect() as holder:
            mortar_seq.get_sequence("invoice").next(holder)
            holding.set()
            failed.wait(30)
            holder.rollback()

    holder = threading.Thread(target=hold_the_series)
    holder.start()
    assert holding.wait(30)
    try:
        number = zope_app.create_invoice("customer")
    finally:
        failed.set()
        holder.join()
    assert faults, "no attempt failed"
    assert all(mortar_seq.worth_retrying(fault) for fault in faults), faults
    assert number == 1  # the number the holder gave back
    assert committed(engine) == [1]
    engine.dispose()


def test_forked_workers(fresh: Database) -> None:
    script = EXAMPLES / "workers" / "number_invoices.py"
    ran = subprocess.run(
        [sys.executable, str(script), url_text(fresh.url), "4", "25"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "gaps=[], duplicates={}" in ran.stdout
    engine = fresh.engine()
    assert committed(engine) == list(range(1, 101))
    by_worker = collections.Counter(committed(engine, "worker"))
    assert sorted(by_worker.values()) == [25, 25, 25, 25]  # four processes, 25 each
    engine.dispose()
