"""Continue the invoice numbers after the rows already stored (an application's data migration).

Revision ID: 3c8d51e0a7f2
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import mortar_seq

revision = "3c8d51e0a7f2"
down_revision: str | None = None
branch_labels = ("invoices",)
depends_on = "5f0c1e2a9b71"  # mortar_seq's tables

# The table as this revision knows it: a migration never imports the application's models.
invoice = sa.table("invoice", sa.column("number", sa.BigInteger))


def upgrade() -> None:
    bind = op.get_bind()
    numbers = mortar_seq.register_sequence("invoice", bind)
    # Under the sequence's lock: the next number is one past the highest stored.
    numbers.restart_after(bind, invoice.c.number)


def downgrade() -> None:
    mortar_seq.delete_sequence(op.get_bind(), "invoice")
