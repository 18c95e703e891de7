"""Add the native sequence 'ticket' (an application's migration).

Revision ID: 7b3e9d20c4a8
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

import mortar_seq

revision = "7b3e9d20c4a8"
down_revision: str | None = None
branch_labels = ("app",)
depends_on = "5f0c1e2a9b71"  # mortar_seq's tables


def upgrade() -> None:
    # Creates the database SEQUENCE and the row that describes it.
    mortar_seq.register_sequence(
        "ticket", op.get_bind(), mortar_seq.NativeSequence(cache=20), start=1000
    )


def downgrade() -> None:
    # Drops them again.
    mortar_seq.delete_sequence(op.get_bind(), "ticket")
