"""Carrying counters over from django-sequences and invenio-sequencegenerator, in their own
table layouts (as their migrations and models create them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mortar_seq import (
    PooledSequence,
    SequenceConfigError,
    get_next_value,
    get_sequence,
    get_template,
    import_django_sequences,
    import_invenio,
    register_sequence,
    register_template,
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
    """The library's rows as committed."""
    with engine.connect() as connection:
        return _rows_seen_by(connection)


def _rows_seen_by(connection: sa.Connection) -> list[tuple[object, ...]]:
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


def test_django_sequences_keeps_the_stored_settings(peer_tables: Engine) -> None:
    engine = peer_tables
    with engine.begin() as connection:
        rows = [{"name": "from-1000", "last": 1002}, {"name": "pooled", "last": 7}]
        connection.execute(django.insert(), rows)
        register_sequence("from-1000", connection, start=1000)  # nothing handed out here yet
        register_sequence("pooled", connection, PooledSequence(block=10))
    with engine.begin() as connection:
        assert import_django_sequences(connection) == {"from-1000": 1003, "pooled": 8}
    with engine.begin() as connection:
        assert get_next_value(connection, "from-1000", 1000) == 1003
        assert get_sequence("pooled", connection).next(connection) == 8


def test_django_sequences_registered_settings_make_a_missing_one(
    tenants: tuple[Engine, Engine],
) -> None:
    first, second = tenants
    with first.begin() as connection:
        register_sequence("inv", connection, start=1000, step=10)
    peers.create_all(second)
    with second.begin() as connection:
        connection.execute(django.insert(), [{"name": "inv", "last": 1020}])
    with second.begin() as connection:
        assert import_django_sequences(connection) == {"inv": 1030}
    with second.begin() as connection:
        assert get_sequence("inv", connection).next(connection) == 1030
        stored = connection.execute(
            sa.select(StoredSequence.start, StoredSequence.step).where(StoredSequence.name == "inv")
        ).one()
    assert tuple(stored) == (1000, 10)


def _refused_after_a_new_one(connection: sa.Connection, kind: str) -> str:
    """Store 'b' so that its import is refused (*kind*); return the refusal's message."""
    if kind == "moves back":
        register_sequence("b", connection).next_many(connection, 9)
        return "'b' would move back from 10 to 6"
    if kind == "beyond the reset":
        register_sequence("b", connection, start=0, reset=3)
        return "'b'.*5.*reset=3"
    if kind == "below the start":
        register_sequence("b", connection, start=1000)
        return "'b'.*5.*start=1000"
    if kind == "off the series":
        register_sequence("b", connection, start=1, step=10)
        return "'b'.*5.*step=10"
    if kind == "resets, used here":
        # Next 2 here, 6 in django-sequences: which is a cycle ahead cannot be told.
        register_sequence("b", connection, start=0, reset=10).next_many(connection, 2)
        return "'b' resets and has handed out values here: whether 6 lies ahead of its next"
    register_template("b", "B-{counter}", connection)
    return "'b' is a template here"


@pytest.mark.parametrize(
    "kind",
    [
        "moves back",
        "beyond the reset",
        "below the start",
        "off the series",
        "resets, used here",
        "template",
    ],
)
def test_django_sequences_refused_writes_nothing(peer_tables: Engine, kind: str) -> None:
    engine = peer_tables
    with engine.begin() as connection:
        connection.execute(
            django.insert(), [{"name": "a-new", "last": 3}, {"name": "b", "last": 5}]
        )
        message = _refused_after_a_new_one(connection, kind)
    before = _library_rows(engine)
    with engine.connect() as connection, connection.begin():
        with pytest.raises(SequenceConfigError, match=message):
            import_django_sequences(connection)
        assert _library_rows(engine) == before  # nothing committed apart meanwhile
        assert _rows_seen_by(connection) == before  # nor written in the caller's transaction
    assert _library_rows(engine) == before
    with engine.begin() as connection:
        assert import_django_sequences(connection, exclude=["b"]) == {"a-new": 4}
    assert [row for row in _library_rows(engine) if row[0] == "b"] == [
        row for row in before if row[0] == "b"
    ]


def invenio_with_refusals(connection: sa.Connection) -> None:
    """T counts by 100 (two counters off its series, as invenio's own test_step leaves one),
    U has counted further here than invenio."""
    connection.execute(
        invenio_templates.insert(),
        [
            {"name": "T", "meta_template": "{k}/{counter}", "start": 0, "step": 100},
            {"name": "U", "meta_template": "{k}-{counter}", "start": 0, "step": 1},
        ],
    )
    connection.execute(
        invenio_counters.insert(),
        [
            {"template_instance": "a/{counter}", "definition_name": "T", "counter": 300},
            {"template_instance": "b/{counter}", "definition_name": "T", "counter": 15},
            {"template_instance": "c/{counter}", "definition_name": "T", "counter": 7},
            {"template_instance": "x-{counter}", "definition_name": "U", "counter": 5},
        ],
    )
    register_template("U", "{k}-{counter}", connection, start=0).next_many(connection, 11, k="x")


def test_invenio_lists_every_refused_counter(peer_tables: Engine) -> None:
    engine = peer_tables
    with engine.begin() as connection:
        invenio_with_refusals(connection)
    before = _library_rows(engine)
    with engine.connect() as connection, connection.begin():
        with pytest.raises(SequenceConfigError) as refused:
            import_invenio(connection)
        assert _rows_seen_by(connection) == before
    assert _library_rows(engine) == before
    message = str(refused.value)
    assert "3 invenio counters refused" in message
    assert "'T' counter 'b/{counter}': 15 is not a value of 'T' (start=0, step=100)" in message
    assert "'T' counter 'c/{counter}': 7 is not a value of 'T' (start=0, step=100)" in message
    assert "'U' counter 'x-{counter}' would move back from 11 to 5" in message
    assert "a/{counter}" not in message


def test_invenio_exclude(peer_tables: Engine) -> None:
    engine = peer_tables
    with engine.begin() as connection:
        invenio_with_refusals(connection)
    left_out = ["b/{counter}", "c/{counter}", "x-{counter}"]
    with engine.begin() as connection:
        assert import_invenio(connection, exclude=left_out) == {"T": {"a/{counter}": 300}}
    with engine.begin() as connection:
        assert import_invenio(connection, exclude=left_out) == {}
        assert list(get_template("T", connection).counters(connection)) == ["a/{counter}"]
        assert get_template("U", connection).next(connection, k="x") == "x-11"  # not moved
    with (
        engine.begin() as connection,
        pytest.raises(SequenceConfigError, match=r"exclude names no invenio counter: 'nope'"),
    ):
        import_invenio(connection, exclude=[*left_out, "nope"])
    with engine.begin() as connection, pytest.raises(TypeError, match="not a str"):
        import_invenio(connection, exclude="b/{counter}")


def test_invenio_keeps_the_stored_implementation(peer_tables: Engine) -> None:
    engine = peer_tables
    with engine.begin() as connection:
        connection.execute(
            invenio_templates.insert(),
            [{"name": "P", "meta_template": "{k}#{counter}", "start": 0, "step": 1}],
        )
        connection.execute(
            invenio_counters.insert(),
            [{"template_instance": "q#{counter}", "definition_name": "P", "counter": 7}],
        )
        register_template("P", "{k}#{counter}", connection, start=0, impl=PooledSequence(10))
    with engine.begin() as connection:
        assert import_invenio(connection) == {"P": {"q#{counter}": 7}}
    with engine.begin() as connection:
        assert get_template("P", connection).next(connection, k="q") == "q#7"
