"""The data-migration recipe of docs/migrations.rst, run by Alembic on every database."""

from __future__ import annotations

import shutil
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import mortar_seq

from .conftest import fresh_registry
from .test_migrations import REPOSITORY, application  # noqa: F401 (the fixture)

RECIPE = REPOSITORY / "docs" / "recipes" / "continue_invoices.py"


def test_continue_invoices_recipe(application: Config) -> None:
    versions = Path(application.config_file_name or "").parent / "migrations" / "versions"
    shutil.copy(RECIPE, versions / RECIPE.name)
    engine: sa.Engine = application.attributes["engine"]
    invoice = sa.Table("invoice", sa.MetaData(), sa.Column("number", sa.BigInteger))
    with engine.begin() as connection:
        invoice.create(connection)
        connection.execute(invoice.insert(), [{"number": n} for n in (1, 2, 3, 57)])

    command.upgrade(application, "heads")  # mortar_seq's tables first, then the recipe
    with fresh_registry(), engine.begin() as connection:
        numbers = mortar_seq.get_sequence("invoice", connection)
        assert numbers.next(connection) == 58

    command.downgrade(application, "invoices@base")
    with engine.connect() as connection:
        assert mortar_seq.get_last_value(connection, "invoice") is None
