"""The command line's restart, audit and import verbs, run as a user would."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .test_cli import fails, ok, run
from .test_importing import django, peers


def test_restart(tmp_path: Path) -> None:
    ok(tmp_path, "create", "invoice")
    ok(tmp_path, "next", "invoice", "-n", "3")
    assert ok(tmp_path, "restart", "invoice", "100") == []
    assert ok(tmp_path, "next", "invoice") == ["100"]
    ok(tmp_path, "create", "PL", "{year}: Playlist {counter}")
    ok(tmp_path, "restart", "PL", "7", "year=2015")
    assert ok(tmp_path, "next", "PL", "year=2015") == ["2015: Playlist 7"]
    assert "is not a value of 'invoice'" in fails(tmp_path, "restart", "invoice", "0")
    assert "takes no KEY=VALUE" in fails(tmp_path, "restart", "invoice", "5", "year=1")


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_audit(engine: Engine, tmp_path: Path) -> None:
    table = sa.Table(
        "cli_invoice",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("series", sa.String(10)),
        sa.Column("number", sa.BigInteger),
    )
    table.create(engine)
    try:
        with engine.begin() as connection:
            rows = [("A", n) for n in (1, 2, 4, 4, 5)] + [("B", n) for n in (1, 2)]
            connection.execute(table.insert(), [{"series": s, "number": n} for s, n in rows])
        url = _url(engine)
        assert ok(
            tmp_path, "audit", "cli_invoice", "number", "--where-key", "series=B", url=url
        ) == [
            "count\t2",
            "first\t1",
            "last\t2",
        ]
        done = run(tmp_path, "audit", "cli_invoice", "number", "--where-key=series=A", url=url)
        assert done.returncode == 1
        assert done.stdout.splitlines() == [
            "count\t5",
            "first\t1",
            "last\t5",
            "gap\t3..3",
            "duplicate\t4\t2 rows",
        ]
        assert "cli_invoice.number is not clean: 1 gap(s), 1 duplicate value(s)" in done.stderr
        assert "no column 'nope'" in fails(tmp_path, "audit", "cli_invoice", "nope", url=url)
        assert "no table 'nope'" in fails(tmp_path, "audit", "nope", "number", url=url)
    finally:
        table.drop(engine)


def test_import_django_sequences(engine: Engine, tmp_path: Path) -> None:
    peers.create_all(engine)
    try:
        with engine.begin() as connection:
            connection.execute(django.insert(), [{"name": "invoices", "last": 41}])
        url = _url(engine)
        assert ok(tmp_path, "import", "django-sequences", url=url) == ["invoices\t42"]
        assert ok(tmp_path, "import", "django-sequences", url=url) == []  # nothing more
        assert ok(tmp_path, "next", "invoices", url=url) == ["42"]
        refused = fails(tmp_path, "import", "django-sequences", url=url)
        assert "'invoices' would move back from 43 to 42" in refused
    finally:
        peers.drop_all(engine)
