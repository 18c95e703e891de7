"""Add the commit marker table: how run_in_transaction finds out whether a cut-off COMMIT committed.

Revision ID: 7b4e2d9c1a60
Revises: 3d9a5c0e7b12
Create Date: 2026-12-04

A new, empty table and its index: no lock on the existing tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "7b4e2d9c1a60"
down_revision: str | None = "3d9a5c0e7b12"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "mortar_seq_commit_marker",
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("written_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token", name="pk_mortar_seq_commit_marker"),
    )
    op.create_index(
        "ix_mortar_seq_commit_marker_written_at", "mortar_seq_commit_marker", ["written_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_mortar_seq_commit_marker_written_at", table_name="mortar_seq_commit_marker")
    op.drop_table("mortar_seq_commit_marker")
