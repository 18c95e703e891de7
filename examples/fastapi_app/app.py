"""FastAPI + AsyncSession: ``POST /invoices`` stores a numbered invoice, run again after a
transient fault."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import mortar_seq


class Base(DeclarativeBase):
    pass


class Invoice(Base):
    __tablename__ = "invoice"
    id: Mapped[int] = mapped_column(primary_key=True)
    # Numbered when the session flushes, in the transaction that inserts the row.
    number: Mapped[int] = mapped_column(
        sa.BigInteger, unique=True, default=mortar_seq.column_default("invoice")
    )
    customer: Mapped[str] = mapped_column(sa.String(100))


class NewInvoice(BaseModel):
    customer: str


def create_app(database_url: str) -> FastAPI:
    # SQLite: a writer waits for the database's one write lock for 5 s, then fails with
    # "database is locked"; under load give it longer: "sqlite+aiosqlite:///app.db?timeout=60".
    engine = create_async_engine(database_url)
    sessions = async_sessionmaker(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as connection:
            await connection.run_sync(mortar_seq.create_tables)  # or the Alembic migrations
            await connection.run_sync(Base.metadata.create_all)
            await connection.run_sync(lambda sync: mortar_seq.register_sequence("invoice", sync))
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/invoices", status_code=201)
    async def create_invoice(new: NewInvoice) -> dict[str, int]:
        async def work(session: AsyncSession) -> int:
            invoice = Invoice(customer=new.customer)
            session.add(invoice)
            await session.flush()  # takes the number
            return invoice.number

        # A new transaction for each attempt: a deadlock, a lock timeout, SQLite's
        # "database is locked" or a failover rolls the number back and runs work again.
        number = await mortar_seq.run_in_transaction_async(sessions, work)
        return {"number": number}

    return app
