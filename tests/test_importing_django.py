"""Importing from a django-sequences table made by Django's own migrations and filled by
django-sequences itself, then continuing with the ported calls."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mortar_seq import (
    SequenceConfigError,
    get_next_value,
    import_django_sequences,
    register_sequence,
)

_BACKENDS = {
    "postgresql": "django.db.backends.postgresql",
    "mysql": "django.db.backends.mysql",
    "sqlite": "django.db.backends.sqlite3",
}


def _point_django_at(url: sa.URL) -> None:
    """Make *url* Django's default database (Django is configured once per process)."""
    import django
    from django.conf import settings
    from django.db import connections

    if url.get_backend_name() == "mysql":
        try:
            import MySQLdb  # noqa: F401
        except ImportError:  # mysqlclient is not installed: PyMySQL stands in for it
            import pymysql

            pymysql.install_as_MySQLdb()
    if not settings.configured:
        settings.configure(
            DATABASES={},
            INSTALLED_APPS=["sequences"],
            USE_TZ=True,
            DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        )
        django.setup()
    database = {
        "ENGINE": _BACKENDS[url.get_backend_name()],
        "NAME": url.database,
        "USER": url.username or "",
        "PASSWORD": url.password or "",
        "HOST": url.host or "",
        "PORT": str(url.port or ""),
    }
    connections.settings["default"] = connections.configure_settings({"default": database})[
        "default"
    ]
    with contextlib.suppress(AttributeError):  # no connection made yet
        del connections["default"]


@pytest.fixture
def django_sequences(engine: Engine) -> Iterator[ModuleType]:
    """The django-sequences module, on the test database, its table made by ``migrate``."""
    from django.core.management import call_command
    from django.db import connections

    _point_django_at(engine.url)
    call_command("migrate", "sequences", verbosity=0)
    import sequences

    try:
        yield sequences
    finally:
        connections["default"].close()
        made = sa.MetaData()
        made.reflect(engine, only=["sequences_sequence", "django_migrations"])
        made.drop_all(engine)


def test_start_kept(engine: Engine, django_sequences: ModuleType) -> None:
    taken = [django_sequences.get_next_value("invoices", initial_value=1000) for _ in "abc"]
    assert taken == [1000, 1001, 1002]
    with engine.begin() as connection:
        register_sequence("invoices", connection, start=1000)  # as the ported code stores it
    with engine.begin() as connection:
        assert import_django_sequences(connection) == {"invoices": 1003}
    with engine.begin() as connection:
        assert get_next_value(connection, "invoices", initial_value=1000) == 1003


@pytest.mark.parametrize(("taken", "following"), [(5, [2, 0, 1]), (6, [0, 1, 2])])
def test_reset_registered_first(
    engine: Engine, django_sequences: ModuleType, taken: int, following: list[int]
) -> None:
    before = [django_sequences.get_next_value("minute", 0, reset_value=3) for _ in range(taken)]
    assert before == [0, 1, 2, 0, 1, 2][:taken]
    with engine.begin() as connection:
        register_sequence("minute", connection, start=0, reset=3)
    with engine.begin() as connection:
        import_django_sequences(connection)
    with engine.begin() as connection:
        # The ported call, as django-sequences would go on.
        assert [get_next_value(connection, "minute", 0, reset_value=3) for _ in "abc"] == following
    with engine.begin() as connection:
        assert import_django_sequences(connection) == {}  # used here since: never moved again


def test_last_beyond_the_registered_reset(engine: Engine, django_sequences: ModuleType) -> None:
    for _ in range(5):
        django_sequences.get_next_value("minute", 0)  # called without its reset: last is 4
    with engine.begin() as connection:
        register_sequence("minute", connection, start=0, reset=3)
    with (
        engine.begin() as connection,
        pytest.raises(SequenceConfigError, match=r"'minute'.* 4 .*reset=3"),
    ):
        import_django_sequences(connection)


def test_last_below_the_registered_start(engine: Engine, django_sequences: ModuleType) -> None:
    django_sequences.get_next_value("invoices")
    django_sequences.get_next_value("invoices", initial_value=1000)  # ignored: it exists
    with engine.begin() as connection:
        register_sequence("invoices", connection, start=1000)
    with (
        engine.begin() as connection,
        pytest.raises(SequenceConfigError, match=r"'invoices'.* 2 .*start=1000"),
    ):
        import_django_sequences(connection)


def test_unregistered_reset_continues_plainly(engine: Engine, django_sequences: ModuleType) -> None:
    """django-sequences stores no reset: unregistered, the import cannot know of one."""
    for _ in range(3):
        django_sequences.get_next_value("minute", 0, reset_value=3)
    with engine.begin() as connection:
        assert import_django_sequences(connection) == {"minute": 3}
        with pytest.raises(SequenceConfigError, match="stored with reset=None"):
            get_next_value(connection, "minute", 0, reset_value=3)
