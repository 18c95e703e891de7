"""Create mortar_seq's tables: stored sequence definitions and their counters.

Revision ID: 5f0c1e2a9b71
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import hashlib
import re

import sqlalchemy as sa
from alembic import context, op
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
    _drop_native_sequences()
    op.drop_table("mortar_seq_counter")
    op.drop_table("mortar_seq_sequence")


def _drop_native_sequences() -> None:
    """Drop the database SEQUENCE of each native sequence, and of each native template's key.

    Their names are in the tables about to go, so read them first. Offline (``--sql``)
    there is nothing to read: the docs say to drop them beforehand.
    """
    if context.is_offline_mode():
        return
    bind = op.get_bind()
    if not bind.dialect.supports_sequences:
        return
    # Tables, not lightweight table(): only Table follows a schema_translate_map.
    metadata = sa.MetaData()
    sequence = sa.Table(
        "mortar_seq_sequence",
        metadata,
        sa.Column("name", _name(100)),
        sa.Column("impl", sa.String(40)),
        sa.Column("pattern", sa.Text()),
    )
    counter = sa.Table(
        "mortar_seq_counter", metadata, sa.Column("name", _name(100)), sa.Column("key", _name(255))
    )
    native = sequence.c.impl == "native"
    # Key '' for every native sequence; a template's counters each have a key of their own.
    plain = sa.select(sequence.c.name, sa.literal("")).where(native)
    keyed = (
        sa.select(counter.c.name, counter.c.key)
        .join(sequence, sequence.c.name == counter.c.name)
        .where(native, sequence.c.pattern.is_not(None))
    )
    for name, key in bind.execute(sa.union(plain, keyed)).all():
        op.execute(sa.schema.DropSequence(sa.Sequence(_native_name(name, key)), if_exists=True))


def _native_name(name: str | bytes, key: str | bytes) -> str:
    # A copy of mortar_seq.strategies.native_name as it was when these objects were
    # created, not an import of it: a migration must keep doing what it did when the
    # library changes. Should the library rename its sequences one day, a later
    # revision renames the existing ones, and its downgrade restores these names.
    name, key = (t.decode("utf-8") if isinstance(t, bytes) else t for t in (name, key))
    readable = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:14].strip("_")
    whole = name if not key else f"{name}\x00{key}"
    digest = hashlib.sha256(whole.encode("utf-8")).hexdigest()[:10]
    return f"mseq_{readable}_{digest}" if readable else f"mseq_{digest}"
