"""zope ``transaction`` and zope.sqlalchemy (as under Pyramid's pyramid_tm): a unit of work
numbered under ``transaction.manager``, run again after a transient fault."""

from __future__ import annotations

import sqlalchemy as sa
import transaction
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session, sessionmaker
from zope.sqlalchemy import datamanager, register

import mortar_seq

DBSession = scoped_session(sessionmaker())
register(DBSession)  # the session joins each transaction; transaction.manager commits it


class Base(DeclarativeBase):
    pass


class Invoice(Base):
    __tablename__ = "invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(
        sa.BigInteger, unique=True, default=mortar_seq.column_default("invoice")
    )
    customer: Mapped[str] = mapped_column(sa.String(100))


def setup(engine: sa.Engine) -> None:
    """Bind the session, create the tables and register the sequence, once, at start."""
    DBSession.configure(bind=engine)
    mortar_seq.create_tables(engine)  # or the shipped Alembic migrations
    Base.metadata.create_all(engine)
    with transaction.manager:
        mortar_seq.register_sequence("invoice", DBSession())
    # zope.sqlalchemy runs a block again only after the errors this list accepts, out of the
    # box deadlocks and serialization failures; worth_retrying adds lock timeouts, a lost
    # connection, a failover and SQLite's "database is locked".
    datamanager._retryable_errors.append((Exception, mortar_seq.worth_retrying))


def create_invoice(customer: str) -> int:
    for attempt in transaction.manager.attempts(5):
        with attempt:
            invoice = Invoice(customer=customer)
            DBSession.add(invoice)
            DBSession.flush()  # takes the number, in the transaction that commits the row
            number = invoice.number
    return number
