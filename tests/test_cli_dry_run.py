"""``restart``, ``delete`` and ``import`` with ``--dry-run``: the plan printed, nothing changed
(the library's rows, the peers' rows, native SEQUENCE objects and, on SQLite, the file's very
bytes), and where the verb would refuse, the same message and exit status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mortar_seq import NativeSequence, register_sequence
from mortar_seq.model import Base

from .test_cli import Done, ok, run
from .test_importing import (
    django,
    invenio_counters,
    invenio_templates,
    invenio_with_refusals,
    peers,
)

NOTHING_CHANGED = "dry run: nothing was changed"


@pytest.fixture
def url(engine: Engine) -> Iterator[str]:
    """The engine's database, with the peers' tables, as a URL for the command line."""
    peers.create_all(engine)
    yield engine.url.render_as_string(hide_password=False)
    peers.drop_all(engine)


def state(engine: Engine) -> list[object]:
    """Everything a dry run must leave as it was: every row of the library's and the peers'
    tables, each native SEQUENCE's own row, and an SQLite file's bytes."""
    found: list[object] = []
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        for table in [*Base.metadata.sorted_tables, *peers.sorted_tables]:
            if inspector.has_table(table.name):
                query = sa.select(table).order_by(*table.primary_key.columns)
                found.append((table.name, [tuple(row) for row in connection.execute(query)]))
        if connection.dialect.supports_sequences:
            # PostgreSQL's last_value and is_called, MariaDB's next_not_cached_value...
            for name in sorted(inspector.get_sequence_names()):
                everything = sa.select(sa.text("*")).select_from(sa.table(name))
                found.append((name, [tuple(row) for row in connection.execute(everything)]))
    if engine.dialect.name == "sqlite":
        found.append(Path(str(engine.url.database)).read_bytes())
    return found


def dry_then_real(engine: Engine, folder: Path, url: str, *argv: str) -> tuple[Done, Done]:
    """Run ``ARGV --dry-run``, check it changed nothing, then ``ARGV``: the same outcome."""
    before = state(engine)
    dry = run(folder, *argv, "--dry-run", url=url)
    assert state(engine) == before, dry
    real = run(folder, *argv, url=url)
    assert "Traceback" not in dry.stderr
    assert dry.returncode == real.returncode, (dry, real)
    if real.returncode:
        assert (dry.stdout, dry.stderr) == ("", real.stderr)
    else:
        assert dry.stderr == ""
    return dry, real


def test_restart_a_sequence(engine: Engine, url: str, tmp_path: Path) -> None:
    ok(tmp_path, "create", "invoice", "--start", "1000", url=url)
    dry, _ = dry_then_real(engine, tmp_path, url, "restart", "invoice", "1000")
    assert dry.stdout.splitlines() == [
        "would make 1000 the next value of sequence 'invoice' (table); it has handed out nothing",
        NOTHING_CHANGED,
    ]
    ok(tmp_path, "next", "invoice", "-n", "42", url=url)
    dry, _ = dry_then_real(engine, tmp_path, url, "restart", "invoice", "1007")
    assert dry.stdout.splitlines()[0] == (
        "would make 1007 the next value of sequence 'invoice' (table); its last value is 1041"
    )
    assert ok(tmp_path, "next", "invoice", url=url) == ["1007"]  # as the plan said


def test_restart_a_template_counter(engine: Engine, url: str, tmp_path: Path) -> None:
    ok(tmp_path, "create", "PL", "{year}: Playlist {counter}", url=url)
    ok(tmp_path, "next", "PL", "year=2015", "-n", "3", url=url)
    dry, _ = dry_then_real(engine, tmp_path, url, "restart", "PL", "2", "year=2015")
    assert dry.stdout.splitlines() == [
        "would make 2 the next value of counter '2015: Playlist {counter}' of template 'PL' "
        "(table); its last identifier is '2015: Playlist 3'",
        NOTHING_CHANGED,
    ]
    dry, _ = dry_then_real(engine, tmp_path, url, "restart", "PL", "9", "year=2016")
    assert dry.stdout.splitlines()[0] == (
        "would make 9 the next value of counter '2016: Playlist {counter}' of template 'PL' "
        "(table); a new counter, made first"
    )
    assert ok(tmp_path, "next", "PL", "year=2016", url=url) == ["2016: Playlist 9"]


def test_restart_pooled_and_native(engine: Engine, url: str, tmp_path: Path) -> None:
    ok(tmp_path, "create", "ids", "--pooled", url=url)
    ok(tmp_path, "next", "ids", url=url)
    dry, _ = dry_then_real(engine, tmp_path, url, "restart", "ids", "5000")
    assert "sequence 'ids' (pooled); its last value is 1000" in dry.stdout  # its block's end
    made = run(tmp_path, "create", "fast", "--native", url=url)
    if not engine.dialect.supports_sequences:
        assert "has no SEQUENCE objects" in made.stderr
        return
    ok(tmp_path, "next", "fast", "-n", "3", url=url)
    last = ok(tmp_path, "last", "fast", url=url)[0]
    # Back to the start: on MariaDB an ALTER SEQUENCE committed at once, for real only.
    dry, _ = dry_then_real(engine, tmp_path, url, "restart", "fast", "1")
    assert f"sequence 'fast' (native); its last value is {last}" in dry.stdout
    assert ok(tmp_path, "next", "fast", url=url) == ["1"]


def test_restart_refusals(engine: Engine, url: str, tmp_path: Path) -> None:
    ok(tmp_path, "create", "invoice", url=url)
    ok(tmp_path, "create", "ids", "--pooled", url=url)
    ok(tmp_path, "next", "ids", url=url)
    ok(tmp_path, "create", "minute", "--pooled", "--start", "0", "--reset", "60", url=url)
    ok(tmp_path, "create", "PL", "{year}: Playlist {counter}", url=url)
    ok(tmp_path, "next", "PL", "year=2015", "-n", "3", url=url)
    ok(tmp_path, "create", "AF", "{PL} > Audio File {counter:02d}", url=url)
    ok(tmp_path, "next", "AF", "PL=2015: Playlist 2", url=url)
    refusals = {
        ("nope", "1"): "no sequence named 'nope'",
        ("invoice", "0"): "0 is not a value of 'invoice'",
        ("invoice", "5", "year=1"): "'invoice' is a sequence: it takes no KEY=VALUE",
        ("PL", "1", "yaer=2015"): "'PL' has no keyword 'yaer'",
        ("PL", "1"): "needs the keyword 'year'",
        ("AF", "1", "PL=2015: Playlist 9"): "is not an identifier issued by template 'PL'",
        ("ids", "5"): "'ids' can only move forward, beyond 1000",
        ("minute", "5"): "'minute' is pooled and resets",
        ("PL", "1", "year=2015"): "template 'AF' counts under '2015: Playlist 2'",
    }
    for argv, message in refusals.items():
        dry, _ = dry_then_real(engine, tmp_path, url, "restart", *argv)
        assert dry.returncode == 1
        assert message in dry.stderr, argv


def test_restart_refused_where_connections_cache(engine: Engine, url: str, tmp_path: Path) -> None:
    """PostgreSQL's cached values stay each connection's: a native sequence with a cache only
    moves forward there; MariaDB's shared cache lets it move back."""
    if not engine.dialect.supports_sequences:
        return  # no native sequence to restart (test_restart_pooled_and_native says why)
    with engine.begin() as connection:
        register_sequence("cached", connection, NativeSequence(cache=20)).next(connection)
    dry, _ = dry_then_real(engine, tmp_path, url, "restart", "cached", "1")
    if engine.dialect.name == "postgresql":  # caches per connection
        assert "'cached' can only move forward, beyond 20" in dry.stderr
    else:
        assert dry.stdout.startswith("would make 1 the next value of sequence 'cached'")


def test_delete(engine: Engine, url: str, tmp_path: Path) -> None:
    ok(tmp_path, "create", "invoice", "--start", "1000", url=url)
    ok(tmp_path, "next", "invoice", "-n", "3", url=url)
    dry, _ = dry_then_real(engine, tmp_path, url, "delete", "invoice")
    assert dry.stdout.splitlines() == [
        "would delete sequence 'invoice' (table: start=1000 step=1), last value 1002",
        "would delete its counter row",
        NOTHING_CHANGED,
    ]
    ok(tmp_path, "create", "PL", "{year}: Playlist {counter}", url=url)
    ok(tmp_path, "next", "PL", "year=2015", "-n", "3", url=url)
    ok(tmp_path, "restart", "PL", "5", "year=2016", url=url)
    dry, _ = dry_then_real(engine, tmp_path, url, "delete", "PL")
    assert dry.stdout.splitlines() == [
        "would delete template 'PL' (table: pattern='{year}: Playlist {counter}' start=1 step=1)",
        "would delete its 2 counters",
        "\t'2015: Playlist {counter}': '2015: Playlist 3'",
        "\t'2016: Playlist {counter}': '2016: Playlist 4'",
        NOTHING_CHANGED,
    ]
    assert ok(tmp_path, "list", url=url) == []


def test_delete_native(engine: Engine, url: str, tmp_path: Path) -> None:
    if not engine.dialect.supports_sequences:
        return  # no native sequence (test_restart_pooled_and_native says why)
    ok(tmp_path, "create", "fast", "--native", url=url)
    ok(tmp_path, "create", "T", "{k}-{counter}", "--native", url=url)
    ok(tmp_path, "next", "T", "k=a", url=url)
    objects = _native_objects(engine)
    assert len(objects) == 2  # fast's, and T's counter for k=a
    # A SEQUENCE's last value counts its cache where the database shares one (MariaDB).
    listed = json.loads(run(tmp_path, "list", "--json", url=url).stdout)
    last = next(entry["counters"] for entry in listed if entry["name"] == "T")["a-{counter}"]
    dry, _ = dry_then_real(engine, tmp_path, url, "delete", "T")
    lines = dry.stdout.splitlines()
    assert lines[:3] == [
        "would delete template 'T' (native: pattern='{k}-{counter}' start=1 step=1)",
        "would delete its 1 counter",
        f"\t'a-{{counter}}': {last!r}",
    ]
    dry, _ = dry_then_real(engine, tmp_path, url, "delete", "fast")
    assert dry.stdout.splitlines()[0] == (
        "would delete sequence 'fast' (native: start=1 step=1), nothing handed out"
    )
    dropped = [line.removeprefix("would drop SEQUENCE ") for line in lines if "drop" in line]
    dropped += [
        line.removeprefix("would drop SEQUENCE ")
        for line in dry.stdout.splitlines()
        if "drop" in line
    ]
    assert sorted(dropped) == objects
    assert _native_objects(engine) == []


def _native_objects(engine: Engine) -> list[str]:
    """The SEQUENCE objects behind native sequences (PostgreSQL's serial columns aside)."""
    with engine.connect() as connection:
        names = sa.inspect(connection).get_sequence_names()
    return sorted(name for name in names if name.startswith("mseq_"))


def test_delete_refusals(engine: Engine, url: str, tmp_path: Path) -> None:
    ok(tmp_path, "create", "PL", "{year}: Playlist {counter}", url=url)
    ok(tmp_path, "create", "AF", "{PL} > Audio File {counter:02d}", url=url)
    dry, _ = dry_then_real(engine, tmp_path, url, "delete", "PL")
    assert "template 'PL' is the parent of 'AF': delete the children first" in dry.stderr
    dry, _ = dry_then_real(engine, tmp_path, url, "delete", "nope")
    assert dry.stderr == "mortar-seq: no sequence named 'nope'\n"


def test_import_django_sequences(engine: Engine, url: str, tmp_path: Path) -> None:
    with engine.begin() as connection:
        rows = [{"name": "invoices", "last": 41}, {"name": "orders", "last": 7}]
        connection.execute(django.insert(), rows)
    ok(tmp_path, "create", "orders", url=url)
    dry, real = dry_then_real(engine, tmp_path, url, "import", "django-sequences")
    assert dry.stdout.splitlines() == [
        "create\tinvoices\t42",
        "move\torders\t8",
        "dry run: 2 sequences would be carried over (1 created); nothing was changed",
    ]
    # The plan is what the import prints, after what it does.
    moved = [line.split("\t", 1)[1] for line in dry.stdout.splitlines()[:-1]]
    assert moved == real.stdout.splitlines()
    dry, _ = dry_then_real(engine, tmp_path, url, "import", "django-sequences")
    assert dry.stdout.splitlines() == [
        "dry run: 0 sequences would be carried over (0 created); nothing was changed"
    ]
    ok(tmp_path, "next", "orders", "-n", "5", url=url)  # now beyond django's
    dry, _ = dry_then_real(engine, tmp_path, url, "import", "django-sequences")
    assert "'orders' would move back from 13 to 8" in dry.stderr
    dry, _ = dry_then_real(
        engine, tmp_path, url, "import", "django-sequences", "--exclude", "order"
    )
    assert "exclude names no django-sequences sequence: 'order'" in dry.stderr


def test_import_django_sequences_pooled_reset(engine: Engine, url: str, tmp_path: Path) -> None:
    """A refusal the import meets only as it writes, after every check: the dry run too."""
    with engine.begin() as connection:
        connection.execute(django.insert(), [{"name": "minute", "last": 7}])
    ok(tmp_path, "create", "minute", "--pooled", "--start", "0", "--reset", "60", url=url)
    dry, _ = dry_then_real(engine, tmp_path, url, "import", "django-sequences")
    assert "'minute' is pooled and resets" in dry.stderr


def test_import_invenio(engine: Engine, url: str, tmp_path: Path) -> None:
    with engine.begin() as connection:
        connection.execute(
            invenio_templates.insert(),
            [
                {
                    "name": "PL",
                    "meta_template": "{year}: Playlist {counter}",
                    "parent_name": None,
                    "start": 0,
                },
                {
                    "name": "AF",
                    "meta_template": "{PL} > Audio File {counter:02d}",
                    "parent_name": "PL",
                    "start": 1,
                },
            ],
        )
        counters = [
            ("2015: Playlist {counter}", "PL", 3),
            ("2016: Playlist {counter}", "PL", 1),
            ("2015: Playlist 2 > Audio File {counter:02d}", "AF", 4),
        ]
        connection.execute(
            invenio_counters.insert(),
            [
                {"template_instance": instance, "definition_name": name, "counter": value}
                for instance, name, value in counters
            ],
        )
    dry, real = dry_then_real(engine, tmp_path, url, "import", "invenio-sequencegenerator")
    assert dry.stdout.splitlines() == [
        "template\tPL\t{year}: Playlist {counter}",
        "template\tAF\t{PL} > Audio File {counter:02d}",
        "create\tAF\t2015: Playlist 2 > Audio File {counter:02d}\t4",
        "create\tPL\t2015: Playlist {counter}\t3",
        "create\tPL\t2016: Playlist {counter}\t1",
        "dry run: 2 templates would be created, 3 counters carried over (3 created); "
        "nothing was changed",
    ]
    moved = [line.split("\t", 1)[1] for line in dry.stdout.splitlines() if line[:1] in "cm"]
    assert moved == real.stdout.splitlines()
    with engine.begin() as connection:
        connection.execute(invenio_counters.update().values(counter=sa.literal(20)))
    dry, real = dry_then_real(engine, tmp_path, url, "import", "invenio-sequencegenerator")
    assert dry.stdout.splitlines()[0] == "move\tAF\t2015: Playlist 2 > Audio File {counter:02d}\t20"
    assert len(real.stdout.splitlines()) == 3


def test_import_invenio_refusals(engine: Engine, url: str, tmp_path: Path) -> None:
    with engine.begin() as connection:
        invenio_with_refusals(connection)
    dry, _ = dry_then_real(engine, tmp_path, url, "import", "invenio-sequencegenerator")
    assert "3 invenio counters refused" in dry.stderr
    left_out = ["--exclude", "b/{counter}", "--exclude", "c/{counter}", "--exclude", "x-{counter}"]
    dry, real = dry_then_real(
        engine, tmp_path, url, "import", "invenio-sequencegenerator", *left_out
    )
    assert dry.stdout.splitlines()[0] == "template\tT\t{k}/{counter}"
    assert real.stdout.splitlines() == ["T\ta/{counter}\t300"]
