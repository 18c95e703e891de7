"""The databases the suite runs on: a SQLite file and fresh PostgreSQL and MariaDB databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

SERVER_URLS = {
    "postgresql": os.environ.get(
        "MORTAR_SEQ_TEST_POSTGRESQL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get(
        "MORTAR_SEQ_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test"
    ),
}
BACKENDS = ("sqlite", "postgresql", "mariadb")
IN_CI = os.environ.get("CI", "").lower() == "true"


class Unreachable(Exception):
    """The server behind a test URL does not answer."""


@dataclass(frozen=True)
class Database:
    backend: str
    url: URL

    def engine(self, **options: object) -> Engine:
        return sa.create_engine(self.url, **options)


@contextmanager
def fresh_database(backend: str, folder: Path) -> Iterator[Database]:
    """Yield a database of its own for this run, dropped afterwards."""
    if backend == "sqlite":
        yield Database(backend, make_url(f"sqlite:///{folder / 'mortar_seq_test.sqlite'}"))
        return
    server = make_url(SERVER_URLS[backend])
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"mortar_seq_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            quoted = connection.dialect.identifier_preparer.quote(name)
            connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
    except sa.exc.OperationalError as exc:
        raise Unreachable(f"{backend} at {server.render_as_string()}: {exc.orig}") from exc
    try:
        yield Database(backend, server.set(database=name))
    finally:
        with admin.connect() as connection:
            force = " WITH (FORCE)" if backend == "postgresql" else ""
            connection.exec_driver_sql(f"DROP DATABASE {quoted}{force}")
        admin.dispose()
