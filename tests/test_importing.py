"""Carrying counters over from django-sequences and invenio-sequencegenerator, in their own
table layouts (as their migrations and models create them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mortar_seq import (
    SequenceConfigError,
    get_sequence,
    get_template,
    import_django_sequences,
    import_invenio,
    register_sequence,
)
from mortar_seq.model import Counter, StoredSequence

peers = sa.MetaData()
# django-sequences 0001_initial + 0002 (name CharField(100) primary key, last
# PositiveBigIntegerField, NOT NULL).
django = sa.Table(
    "sequences_sequence",
    peers,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("last", sa.BigInteger, nullable=False),
)
# invenio_sequencegenerator/models.py: TemplateDefinition and Counter.
invenio_templates = sa.Table(
    "sequencegenerator_template",
    peers,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("meta_template", sa.String(255), unique=True),
    sa.Column("parent_name", sa.String(255), sa.ForeignKey("sequencegenerator_template.name")),
    sa.Column("start", sa.Integer, default=0),
    sa.Column("step", sa.Integer, default=1),
)
invenio_counters = sa.Table(
    "sequencegenerator_counter",
    peers,
    sa.Column("template_instance", sa.String(255), primary_key=True, index=True),
    sa.Column("definition_name", sa.String(255), sa.ForeignKey(invenio_templates.c.name)),
    sa.Column("counter", sa.Integer, nullable=False),
)


@pytest.fixture
def peer_tables(engine: Engine) -> Iterator[Engine]:
    peers.create_all(engine)
    yield engine
    peers.drop_all(engine)


def _library_rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        counters = connection.execute(
            sa.select(Counter.name, Counter.key, Counter.value).order_by(Counter.name, Counter.key)
        ).all()
        stored = connection.execute(sa.select(StoredSequence.name).order_by("name")).all()
    return [tuple(row) for row in [*counters, *stored]]


def test_django_sequences(peer_tables: Engine) -> None:
    engine = peer_tables
    with engine.begin() as connection:
        connection.execute(
            django.insert(), [{"name": "invoices", "last": 41}, {"name": "x", "last": 1}]
        )
        register_sequence("x", connection).next(connection)  # already where django left it
    with engine.begin() as connection:
        assert import_django_sequences(connection) == {"invoices": 42}  # x stays
    before = _library_rows(engine)
    with engine.begin() as connection:
        assert import_django_sequences(connection) == {}  # again: nothing changes
    assert _library_rows(engine) == before
    with engine.begin() as connection:
        assert get_sequence("invoices", connection).next(connection) == 42
        assert get_sequence("x", connection).next(connection) == 2


def test_django_sequences_never_back_and_all_or_nothing(peer_tables: Engine) -> None:
    engine = peer_tables
    with engine.begin() as connection:
        rows = [{"name": "a-new", "last": 5}, {"name": "b-ahead", "last": 3}]
        connection.execute(django.insert(), rows)
        ahead = register_sequence("b-ahead", connection)
        assert ahead.next_many(connection, 9) == range(1, 10)
    before = _library_rows(engine)
    with (
        engine.begin() as connection,
        pytest.raises(SequenceConfigError, match="'b-ahead' would move back from 10 to 4"),
    ):
        import_django_sequences(connection)
    assert _library_rows(engine) == before  # 'a-new' was not made either


def test_invenio(peer_tables: Engine) -> None:
    engine = peer_tables
    with engine.begin() as connection:
        connection.execute(
            invenio_templates.insert(),
            [
                {
                    "name": "PL",
                    "meta_template": "{year}: Playlist {counter}",
                    "start": 0,
                    "step": 1,
                },
                {
                    "name": "AF",
                    "meta_template": "{PL} > Audio File {counter:02d}",
                    "parent_name": "PL",
                    "start": 1,
                    "step": 1,
                },
            ],
        )
        # invenio's counter holds the next value: PL issued 2015's 0, 1, 2 and 2016's 0.
        connection.execute(
            invenio_counters.insert(),
            [
                {
                    "template_instance": "2015: Playlist {counter}",
                    "definition_name": "PL",
                    "counter": 3,
                },
                {
                    "template_instance": "2016: Playlist {counter}",
                    "definition_name": "PL",
                    "counter": 1,
                },
                {
                    "template_instance": "2017: Playlist {counter}",
                    "definition_name": "PL",
                    "counter": 0,
                },
                {
                    "template_instance": "2015: Playlist 2 > Audio File {counter:02d}",
                    "definition_name": "AF",
                    "counter": 4,
                },
            ],
        )
    with engine.begin() as connection:
        moved = import_invenio(connection)
    assert moved == {
        "AF": {"2015: Playlist 2 > Audio File {counter:02d}": 4},
        "PL": {
            "2015: Playlist {counter}": 3,
            "2016: Playlist {counter}": 1,
            "2017: Playlist {counter}": 0,
        },
    }
    before = _library_rows(engine)
    with engine.begin() as connection:
        assert import_invenio(connection) == {}
    assert _library_rows(engine) == before
    with engine.begin() as connection:
        playlist, audio = get_template("PL", connection), get_template("AF", connection)
        assert playlist.next(connection, year=2015) == "2015: Playlist 3"
        assert playlist.next(connection, year=2017) == "2017: Playlist 0"
        assert audio.next(connection, PL="2015: Playlist 2") == "2015: Playlist 2 > Audio File 04"


def test_invenio_never_back(peer_tables: Engine) -> None:
    engine = peer_tables
    with engine.begin() as connection:
        connection.execute(
            invenio_templates.insert(),
            [{"name": "T", "meta_template": "{k}-{counter}", "start": 0, "step": 1}],
        )
        connection.execute(
            invenio_counters.insert(),
            [
                {"template_instance": "a-{counter}", "definition_name": "T", "counter": 9},
                {"template_instance": "b-{counter}", "definition_name": "T", "counter": 2},
            ],
        )
        import_invenio(connection)
        get_template("T", connection).next_many(connection, 5, k="b")  # b: 2..6
        connection.execute(invenio_counters.update().values(counter=20))
    before = _library_rows(engine)
    back = r"'T' counter 'b-\{counter\}' would move back from 7 to 5"
    with engine.begin() as connection:
        connection.execute(
            invenio_counters.update()
            .where(invenio_counters.c.template_instance == "b-{counter}")
            .values(counter=5)
        )
        with pytest.raises(SequenceConfigError, match=back):
            import_invenio(connection)
        connection.rollback()
    assert _library_rows(engine) == before  # a's move to 20 was not written either
