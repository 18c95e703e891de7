"""Store a plain sequence's counter key as '-', not '': Oracle stores '' as NULL.

Revision ID: 3d9a5c0e7b12
Revises: 5f0c1e2a9b71
Create Date: 2026-11-27

One UPDATE of the plain sequences' counter rows (a row lock each, no table rewrite).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "3d9a5c0e7b12"
down_revision: str | None = "5f0c1e2a9b71"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None

# What mortar_seq.model.PLAIN_KEY was when this revision was written; a migration keeps
# doing what it did, whatever the library becomes.
PLAIN_KEY = "-"


def _counter() -> sa.Table:
    # A Table, not the lighter table(): only a Table follows a schema_translate_map. Its
    # type only binds the text (MariaDB compares it with the VARBINARY column bytewise).
    return sa.Table("mortar_seq_counter", sa.MetaData(), sa.Column("key", sa.String(255)))


def _rename(old: str, new: str) -> None:
    counter = _counter()
    op.execute(sa.update(counter).where(counter.c.key == old).values(key=new))


def upgrade() -> None:
    _rename("", PLAIN_KEY)


def downgrade() -> None:
    _rename(PLAIN_KEY, "")
