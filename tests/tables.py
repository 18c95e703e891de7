"""Tables the tests write to, beside the library's own."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

test_metadata = sa.MetaData()

issued = sa.Table(
    "test_issued",
    test_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sequence", sa.String(120), nullable=False),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("worker", sa.Integer, nullable=False),
)

marker = sa.Table(
    "test_marker",
    test_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("note", sa.String(50), nullable=False),
)

canary = sa.Table(
    "canary",
    test_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
)


def committed(engine: Engine, name: str) -> list[int]:
    """The values of sequence *name* recorded in test_issued by committed transactions, sorted."""
    with engine.connect() as connection:
        query = sa.select(issued.c.value).where(issued.c.sequence == name)
        return sorted(connection.execute(query).scalars())
