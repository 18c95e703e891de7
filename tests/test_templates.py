"""Templates on each database: counters per rendering, hierarchies, storage, rollback."""

from __future__ import annotations

import itertools
import re

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from mortar_seq import (
    PooledSequence,
    SequenceConfigError,
    TableSequence,
    TemplateError,
    UnknownSequence,
    delete_sequence,
    get_next_value,
    get_sequence,
    get_template,
    register_sequence,
    register_template,
)
from mortar_seq import registry as registry_module
from mortar_seq.model import Counter, StoredSequence

from .conftest import Caller, counting, fresh_registry


def test_playlists_and_audio_files(caller: Caller) -> None:
    with caller.block() as session:
        playlist = register_template("PL", "{year}: Playlist {counter}", session)
        audio = register_template("AF", "{PL} > Audio File {counter:02d}", session)
        assert audio.parent == playlist
    with caller.block() as session:
        assert playlist.next(session, year=2015) == "2015: Playlist 1"
        second = playlist.next(session, year="2015")  # renders alike: one counter
        assert second == "2015: Playlist 2"
        assert playlist.next(session, year=2016) == "2016: Playlist 1"
        assert audio.next(session, PL=second) == "2015: Playlist 2 > Audio File 01"
        assert audio.next(session, PL=second) == "2015: Playlist 2 > Audio File 02"
        assert audio.next(session, PL="2015: Playlist 1") == "2015: Playlist 1 > Audio File 01"
        assert audio.last(session, PL=second) == "2015: Playlist 2 > Audio File 02"
        assert playlist.last(session, year=2017) is None


@pytest.mark.parametrize(
    "value", ["2015: Playlist 3", "2015: Playlist 0", "2017: Playlist 1", "nonsense", 2015, None]
)
def test_parent_values_must_have_been_issued(caller: Caller, value: object) -> None:
    with caller.block() as session:
        playlist = register_template("PL", "{year}: Playlist {counter}", session)
        audio = register_template("AF", "{PL!s} > {counter}", session)
        playlist.next(session, year=2015)
        playlist.next(session, year=2015)
        refused = "is not an identifier issued by template 'PL'"
        if value is None:
            refused = r"needs the keyword 'PL' \(it is None\)"
        with pytest.raises(TemplateError, match=refused):
            audio.next(session, PL=value)


def test_keywords(caller: Caller) -> None:
    with caller.block() as session:
        invoice = register_template("INV", "INV/{year}/{counter:05d}", session, start=42)
        assert invoice.next(session, year=2026, extra="ignored") == "INV/2026/00042"
        with pytest.raises(TemplateError, match="needs the keyword 'year'"):
            invoice.next(session, yeer=2026)
        order = register_template("ORD", "{counter:03d}-{cat}", session, step=5)
        assert order.next_many(session, 3, cat="A") == ["001-A", "006-A", "011-A"]
        assert list(itertools.islice(order.values(session, cat="B"), 2)) == ["001-B", "006-B"]


def test_alike_renderings_share_a_counter(caller: Caller) -> None:
    with caller.block() as session:
        template = register_template("AB", "{a}{b}-{counter}", session)
        assert template.next(session, a="1", b="23") == "123-1"
        assert template.next(session, a="12", b=3) == "123-2"


def test_templates_never_share_counters(caller: Caller) -> None:
    with caller.block() as session:
        first = register_template("first", "{x}-{counter}", session)
        second = register_template("second", "{x}-{counter}", session)
        assert [first.next(session, x=1), first.next(session, x=1)] == ["1-1", "1-2"]
        assert second.next(session, x=1) == "1-1"


def test_stored_for_other_processes(caller: Caller) -> None:
    with caller.block() as session:
        playlist = register_template("PL", "{year}: Playlist {counter}", session, step=2)
        register_template("AF", "{PL} > {counter}", session)
        first = playlist.next(session, year=1999)
    registry_module.registry = registry_module.Registry()
    with caller.block() as session:
        audio = get_template("AF", session)
        assert audio.parent is not None
        assert audio.parent.step == 2
        assert audio.next(session, PL=first) == "1999: Playlist 1 > 1"
        assert get_template("PL", session).next(session, year=1999) == "1999: Playlist 3"
        assert get_template("PL", session) is audio.parent
    with pytest.raises(UnknownSequence, match="registered as a template in this process"):
        get_template("PL")  # what a database stores is not this process's registration


def test_each_database_its_stored_template(tenants: tuple[Engine, Engine]) -> None:
    one, two = tenants
    with fresh_registry(), one.begin() as connection:  # each database's own set-up
        register_template("T", "A-{counter}", connection, impl=PooledSequence)
    with fresh_registry(), two.begin() as connection:
        register_template("T", "B/{counter:05d}", connection, start=5000)
    taken = []
    for engine in (one, two, one, two):
        with engine.begin() as connection:
            found = get_template("T", connection)
            taken.append((type(found.strategy), found.next(connection)))
    assert taken == [
        (PooledSequence, "A-1"),
        (TableSequence, "B/05000"),
        (PooledSequence, "A-2"),
        (TableSequence, "B/05001"),
    ]
    with one.begin() as connection:
        registered = register_template("T", "A-{counter}", connection, impl=PooledSequence)
    with two.begin() as connection, pytest.raises(SequenceConfigError, match="B/"):
        get_template("T", connection)  # never applied where stored otherwise
    with one.begin() as connection:
        assert get_template("T", connection) is registered


def test_registration_conflicts(caller: Caller) -> None:
    with caller.block() as session:
        template = register_template("T", "{counter}", session)
        assert register_template("T", "{counter}", session) == template
        with pytest.raises(
            SequenceConfigError, match=re.escape("pattern='{counter}'; got pattern='x{counter}'")
        ):
            register_template("T", "x{counter}", session)
        with pytest.raises(SequenceConfigError, match="already registered as a template"):
            register_sequence("T", session)
        register_sequence("S", session)
        with pytest.raises(SequenceConfigError, match="already registered as a sequence"):
            register_template("S", "{counter}", session)
        with pytest.raises(UnknownSequence, match="it is a template"):
            get_sequence("T")
    registry_module.registry = registry_module.Registry()
    with caller.block() as session:
        with pytest.raises(UnknownSequence, match="it is a sequence, not a template"):
            get_template("S", session)
        with pytest.raises(SequenceConfigError, match="already stored as a template"):
            get_next_value(session, "T")


def test_invalid_pattern_writes_nothing(engine: Engine) -> None:
    with engine.begin() as connection:
        register_template("P", "{counter}", connection)
        # While Q is no template, it is a keyword: one parent, P.
        assert register_template("C1", "{P}{Q}{counter}", connection).parent is not None
        register_template("Q", "q{counter}", connection)
        with pytest.raises(TemplateError, match="names two parents: 'P' and 'Q'"):
            register_template("C", "{P}{Q}{counter}", connection)
        with pytest.raises(TemplateError, match="must hold one"):
            register_template("D", "{P}", connection)
    with engine.connect() as connection:
        names = connection.execute(sa.select(StoredSequence.name)).scalars().all()
        assert sorted(names) == ["C1", "P", "Q"]


def test_rollback_gives_the_identifier_back(engine: Engine) -> None:
    with engine.begin() as connection:
        template = register_template("R", "R-{counter}", connection)
    with engine.connect() as connection:
        assert template.next(connection) == "R-1"
        connection.rollback()
    with Session(engine) as session:
        assert template.next(session) == "R-1"
        session.rollback()
    with engine.begin() as connection:
        assert template.next(connection) == "R-1"


def test_first_use_of_a_key_rolled_back(engine: Engine) -> None:
    with engine.begin() as connection:
        template = register_template("K", "{k}-{counter}", connection)
    with engine.connect() as connection:
        assert template.next(connection, k="new") == "new-1"
        connection.rollback()  # on PostgreSQL and SQLite its counter row goes too
        assert template.next(connection, k="new") == "new-1"
        connection.commit()


def test_steady_state_is_one_counter_call(engine: Engine) -> None:
    with engine.begin() as connection:
        template = register_template("S", "S/{y}/{counter}", connection)
        template.next(connection, y=1)
    with engine.connect() as connection, counting(engine) as sent:
        template.next(connection, y=1)
        connection.rollback()
    assert len(sent) == 1  # MariaDB too: UPDATE ... SET value = LAST_INSERT_ID(...)


def test_pooled_template(engine: Engine) -> None:
    with engine.begin() as connection:
        template = register_template("P", "{k}#{counter}", connection, impl=PooledSequence(block=5))
    with engine.begin() as connection:
        assert template.next_many(connection, 3, k="a") == ["a#1", "a#2", "a#3"]
        assert template.next(connection, k="b") == "b#1"
    with engine.begin() as connection:
        child = register_template("C", "{P} / {counter}", connection)
        assert child.next(connection, P="a#5") == "a#5 / 1"  # reserved: a block of 5


def test_delete_a_template(engine: Engine) -> None:
    with engine.begin() as connection:
        template = register_template("D", "{k}-{counter}", connection)
        template.next(connection, k=1)
        assert delete_sequence(connection, "D") is True
        assert connection.execute(sa.select(Counter.name)).all() == []
        with pytest.raises(UnknownSequence):
            get_template("D")
