"""SQLModel: an invoice model whose number column is gapless."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel

import mortar_seq


class Invoice(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # None until the session flushes; then numbered in the transaction that inserts the row.
    number: int | None = Field(
        default=None,
        unique=True,
        sa_type=sa.BigInteger,
        sa_column_kwargs={"default": mortar_seq.column_default("invoice")},
    )
    customer: str = Field(max_length=100)


def setup(engine: sa.Engine) -> None:
    """Create the tables and register the sequence, once, at application start."""
    mortar_seq.create_tables(engine)  # or the shipped Alembic migrations
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        mortar_seq.register_sequence("invoice", session)
        session.commit()


def create_invoice(engine: sa.Engine, customer: str) -> Invoice:
    with Session(engine) as session:
        invoice = Invoice(customer=customer)
        session.add(invoice)
        session.commit()  # a rollback instead would give the number back
        session.refresh(invoice)
        return invoice
