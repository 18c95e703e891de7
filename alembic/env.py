"""Alembic environment in which mortar_seq's own migrations are written and checked.

``-x schema=NAME`` (PostgreSQL) puts the library's tables in schema NAME, through
SQLAlchemy's ``schema_translate_map``; the version table stays in the default schema.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context

from mortar_seq.model import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

url = os.environ.get("MORTAR_SEQ_URL") or config.get_main_option("sqlalchemy.url")
schema = context.get_x_argument(as_dictionary=True).get("schema")
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = sa.create_engine(str(url), poolclass=sa.NullPool)
    if schema:
        # On the engine, so that connections the library opens apart carry it too.
        engine = engine.execution_options(schema_translate_map={None: schema})
    with engine.connect() as connection:
        options = {}
        if schema:
            options["version_table_schema"] = connection.dialect.default_schema_name
        context.configure(connection=connection, target_metadata=target_metadata, **options)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
