"""``mortar-seq import``, run as a user would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from .test_cli import fails, ok
from .test_importing import invenio_with_refusals, peers


@pytest.fixture
def url(engine: Engine) -> Iterator[str]:
    peers.create_all(engine)
    yield engine.url.render_as_string(hide_password=False)
    peers.drop_all(engine)


def test_help_lists_the_sources(tmp_path: Path) -> None:
    shown = " ".join(ok(tmp_path, "import", "--help"))
    assert "{django-sequences,invenio-sequencegenerator}" in shown
    assert "--exclude NAME" in shown


def test_exclude(engine: Engine, url: str, tmp_path: Path) -> None:
    with engine.begin() as connection:
        invenio_with_refusals(connection)
    refused = fails(tmp_path, "import", "invenio-sequencegenerator", url=url)
    assert "3 invenio counters refused" in refused
    assert len(refused.splitlines()) == 1
    left_out = ["--exclude", "b/{counter}", "--exclude=c/{counter}", "--exclude", "x-{counter}"]
    moved = ok(tmp_path, "import", "invenio-sequencegenerator", *left_out, url=url)
    assert moved == ["T\ta/{counter}\t300"]
    again = ok(tmp_path, "import", "invenio-sequencegenerator", *left_out, url=url)
    assert again == []
