"""A mapped class over test_issued whose value is numbered at flush (for worker processes)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mortar_seq import column_default


class _Base(DeclarativeBase):
    pass


class IssuedAtFlush(_Base):
    __tablename__ = "test_issued"

    id: Mapped[int] = mapped_column(primary_key=True)
    sequence: Mapped[str] = mapped_column(sa.String(120))
    value: Mapped[int] = mapped_column(sa.BigInteger, default=column_default("rows"))
    worker: Mapped[int] = mapped_column()
