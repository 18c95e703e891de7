"""Flask + Flask-SQLAlchemy: ``POST /invoices`` stores an invoice numbered 1, 2, 3... no gap."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import mortar_seq


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Invoice(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    # Numbered when the session flushes, in the transaction that inserts the row.
    number: Mapped[int] = mapped_column(
        sa.BigInteger, unique=True, default=mortar_seq.column_default("invoice")
    )
    customer: Mapped[str] = mapped_column(sa.String(100))


def create_app(database_url: str) -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    db.init_app(app)
    with app.app_context():
        mortar_seq.create_tables(db.engine)  # or the shipped Alembic migrations
        db.create_all()
        mortar_seq.register_sequence("invoice", db.session)
        db.session.commit()

    @app.post("/invoices")
    def create_invoice() -> tuple[dict[str, int], int]:
        invoice = Invoice(customer=request.json["customer"])
        db.session.add(invoice)
        db.session.commit()  # a rollback instead would give the number back
        return {"number": invoice.number}, 201

    return app
