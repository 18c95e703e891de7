"""Create mortar_seq's tables: stored sequence definitions and their counters.

Revision ID: 5f0c1e2a9b71
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "5f0c1e2a9b71"
down_revision: str | None = None
branch_labels = ("mortar_seq",)
depends_on: str | None = None


def _name(length: int) -> sa.types.TypeEngine[str]:
    # As mortar_seq.model.Name: exact, bytewise comparison on MySQL and MariaDB.
    return sa.String(length).with_variant(mysql.VARBINARY(4 * length), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "mortar_seq_sequence",
        sa.Column("name", _name(100), nullable=False),
        sa.Column("impl", sa.String(40), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("reset", sa.BigInteger(), nullable=True),
        sa.Column("pattern", sa.Text(), nullable=True),
        sa.Column("parent", _name(100), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_mortar_seq_sequence"),
    )
    op.create_table(
        "mortar_seq_counter",
        sa.Column("name", _name(100), nullable=False),
        sa.Column("key", _name(255), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("name", "key", name="pk_mortar_seq_counter"),
    )


def downgrade() -> None:
    op.drop_table("mortar_seq_counter")
    op.drop_table("mortar_seq_sequence")
