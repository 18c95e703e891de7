"""Tables numbered at commit, and the worker processes that number them (importable, for the
spawn start method)."""

from __future__ import annotations

import random
from multiprocessing.synchronize import Barrier
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from mortar_seq import get_sequence


class Base(DeclarativeBase):
    pass


class Document(Base):
    __tablename__ = "test_document"

    id: Mapped[int] = mapped_column(primary_key=True)
    series: Mapped[str] = mapped_column(sa.String(40))
    number: Mapped[int | None] = mapped_column(sa.BigInteger)


documents = Base.metadata.tables["test_document"]

lines = sa.Table(
    "test_line",
    Base.metadata,
    sa.Column("document", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("line", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("number", sa.BigInteger),
)

strict = sa.Table(
    "test_strict",
    Base.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.BigInteger, nullable=False),
)


class _RollBack(Exception):
    pass


def number_at_commit(
    url: str,
    name: str,
    transactions: int,
    worker: int,
    barrier: Barrier,
    results: Any,
) -> None:
    """In each transaction, write two documents numbered at commit (one an ORM object, one
    inserted), and commit; about one in four rolls back instead."""
    engine = sa.create_engine(url)
    rng = random.Random(worker)
    committed = 0
    try:
        with Session(engine) as session, session.begin():
            sequence = get_sequence(name, session)
        barrier.wait(60)
        for _ in range(transactions):
            try:
                with Session(engine) as session, session.begin():
                    document = Document(series=name)
                    session.add(document)
                    sequence.at_commit(session, document, "number")
                    sequence.insert_at_commit(session, documents, {"series": name}, column="number")
                    if rng.random() < 0.25:
                        raise _RollBack
                committed += 2
            except _RollBack:
                pass
        results.put((worker, committed, None))
    except BaseException as exc:  # reported to the test, which fails on it
        results.put((worker, committed, repr(exc)))
    finally:
        engine.dispose()
