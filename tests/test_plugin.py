"""Implementations from other packages: `register_implementation` and the entry-point group.

The worked example is ``tests/plugin_example`` (``pip install -e tests/plugin_example``,
as ``.ci/run`` does): under CI=true its tests fail without it, elsewhere they are skipped.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
from sqlalchemy.engine import Dialect, Engine

import mortar_seq
from mortar_seq import SequenceConfigError, TableSequence, register_implementation
from mortar_seq.strategies import registration

from .conftest import fresh_registry
from .databases import IN_CI
from .tables import issued
from .test_cli import fails, ok

INSTALL = ".venv/bin/pip install -e tests/plugin_example"


def example() -> ModuleType:
    try:
        import mortar_seq_example_plugin
    except ImportError:
        if IN_CI:
            pytest.fail(f"CI=true and the example plug-in is not installed: {INSTALL}")
        pytest.skip(f"the example plug-in is not installed ({INSTALL})")
    return mortar_seq_example_plugin


@pytest.fixture(autouse=True)
def kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the built-in kinds are known, as in a new process."""
    monkeypatch.setattr(registration, "_kinds", dict(registration._kinds))


@dataclass(frozen=True)
class Minimal:
    """Only the required verbs, over a counter row."""

    kind: ClassVar[str] = "minimal"

    def check(self, dialect: Dialect, definition: Any) -> None:
        pass

    def create(self, session: Any, definition: Any, *, nowait: bool) -> None:
        TableSequence().create(session, definition, nowait=nowait)

    def next(self, session: Any, definition: Any) -> int:
        return TableSequence().next(session, definition)

    def next_many(self, session: Any, definition: Any, count: int) -> Sequence[int]:
        return TableSequence().next_many(session, definition, count)

    def last(self, session: Any, definition: Any) -> int | None:
        return TableSequence().last(session, definition)

    def delete(self, session: Any, definition: Any) -> None:
        pass


def test_a_decorator_that_returns_the_class() -> None:
    assert register_implementation(Minimal) is Minimal
    assert register_implementation(Minimal) is Minimal  # again: nothing happens


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: 42, "takes a class"),
        (lambda: type("NoKind", (), {}), "needs a class attribute kind"),
        (lambda: dataclass(frozen=True)(type("Empty", (), {"kind": ""})), "needs a class attr"),
        (lambda: type("Verbless", (), {"kind": "verbless"}), "lacks the SequenceStrategy verb"),
        (lambda: type("Plain", (), {"kind": "plain", **_verbs()}), "@dataclass(frozen=True)"),
        (lambda: dataclass(type("Thawed", (), {"kind": "thawed", **_verbs()})), "frozen"),
        (lambda: _with_required_option(), "every option needs a default"),
        (lambda: dataclass(frozen=True)(type("Clash", (Minimal,), {"kind": "table"})), "table"),
    ],
)
def test_refused(make: Any, message: str) -> None:
    with pytest.raises(SequenceConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        register_implementation(make())


def _verbs() -> dict[str, Any]:
    return {verb: getattr(Minimal, verb) for verb in registration.REQUIRED_VERBS}


def _with_required_option() -> type:
    @dataclass(frozen=True)
    class Needy(Minimal):
        size: int  # type: ignore[misc]
        kind: ClassVar[str] = "needy"

    return Needy


def test_an_unknown_class_is_refused() -> None:
    with pytest.raises(SequenceConfigError, match="register_implementation"):
        registration.strategy_for(Minimal)


def test_a_stored_kind_nobody_registered() -> None:
    with pytest.raises(SequenceConfigError) as raised:
        registration.stored_strategy("nobody", {})
    assert "'nobody'" in str(raised.value)
    assert "register_implementation(...)" in str(raised.value)
    assert "'mortar_seq.implementations'" in str(raised.value)


def test_missing_optional_verbs_are_named(engine: Engine) -> None:
    register_implementation(Minimal)
    with engine.begin() as connection:
        seq = mortar_seq.register_sequence("minimal", connection, Minimal)
        assert seq.next_many(connection, 2) == range(1, 3)
        rows = [{"sequence": "minimal", "worker": 0}] * 2
        assert seq.insert_many(connection, issued, rows, column="value") == range(3, 5)
        with pytest.raises(SequenceConfigError, match=r"'minimal' .* no restart\(\)"):
            seq.restart(connection, 1)
        with pytest.raises(SequenceConfigError, match=r"'minimal' .* no restart\(\)"):
            seq.restart_after(connection, issued.c.value)
        assert seq.next(connection) == 5


def test_found_through_its_entry_point(engine: Engine) -> None:
    plugin = example()
    plugin.create_tables(engine)
    with engine.begin() as connection:
        connection.execute(plugin.counters.delete())
        impl = plugin.CounterRowSequence(label="ours")
        seq = mortar_seq.register_sequence("plug", connection, impl, start=10, step=5)
        assert seq.next_many(connection, 3) == range(10, 25, 5)
        seq.restart(connection, 40)
        assert seq.next(connection) == 40
        assert seq.last(connection) == 40
        tpl = mortar_seq.register_template("plug-t", "T{x}-{counter}", connection, impl=impl)
        assert tpl.next(connection, x=1) == "T1-1"
        assert tpl.next(connection, x=1) == "T1-2"
    with fresh_registry(), engine.begin() as connection:
        stored = mortar_seq.get_sequence("plug", connection)
        assert stored.strategy == plugin.CounterRowSequence(label="ours")
        assert stored.next(connection) == 45
        with pytest.raises(SequenceConfigError, match="label='ours'"):
            mortar_seq.register_sequence(
                "plug", connection, plugin.CounterRowSequence(label="theirs"), start=10, step=5
            )
    # A fresh process finds the kind through the entry point alone.
    url = engine.url.render_as_string(hide_password=False)
    code = (
        "import sys, sqlalchemy as sa, mortar_seq\n"
        "engine = sa.create_engine(sys.argv[1])\n"
        "with engine.begin() as c:\n"
        "    print(mortar_seq.get_sequence('plug', c).next(c))\n"
        "    print(mortar_seq.get_template('plug-t', c).next(c, x=1))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, url], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr, done.stdout.split()) == (0, "", ["50", "T1-3"])
    with engine.begin() as connection:
        assert mortar_seq.delete_sequence(connection, "plug")
        assert connection.execute(plugin.counters.select()).all() == [("plug-t", "T1-{counter}", 3)]


def test_the_command_line(tmp_path: Path) -> None:
    plugin = example()
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    ok(tmp_path, "create", "x", url=url)  # the library's tables
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    plugin.create_tables(engine)
    engine.dispose()
    assert (
        ok(tmp_path, "create", "plug", "--impl", "example-counter", "--start", "7", url=url) == []
    )
    assert ok(tmp_path, "next", "plug", "-n", "3", url=url) == ["7", "8", "9"]
    assert ok(tmp_path, "last", "plug", url=url) == ["9"]
    assert "plug" in "\n".join(ok(tmp_path, "list", url=url))
    assert ok(tmp_path, "create", "pool", "--impl", "pooled", url=url) == []
    message = fails(tmp_path, "create", "y", "--impl", "nobody", url=url)
    assert "'nobody'" in message
    assert "mortar_seq.implementations" in message


def _defined_again(module: str = __name__) -> type:
    """A new class statement each call, as a reloaded module or a notebook cell run twice."""

    @dataclass(frozen=True)
    class Redefined(Minimal):
        kind: ClassVar[str] = "redefined"

    Redefined.__module__ = module
    return Redefined


def test_a_class_defined_again_replaces_the_first() -> None:
    first, second = _defined_again(), _defined_again()
    assert first is not second
    assert register_implementation(first) is first
    assert register_implementation(second) is second  # the same name: a re-definition
    assert registration.implementation("redefined") is second
    assert isinstance(registration.strategy_for(second), second)
    elsewhere = _defined_again(module="another.module")  # the same qualified name only
    with pytest.raises(SequenceConfigError) as refused:
        register_implementation(elsewhere)
    assert "another.module._defined_again.<locals>.Redefined needs another kind" in str(
        refused.value
    )
    assert registration.implementation("redefined") is second


def test_plug_in_authors_import_the_protocol_and_definition_from_the_package() -> None:
    # Before: Definition was only importable from the private module mortar_seq.definition.
    import mortar_seq
    from mortar_seq.definition import Definition
    from mortar_seq.strategies import SequenceStrategy

    assert mortar_seq.Definition is Definition
    assert mortar_seq.SequenceStrategy is SequenceStrategy
    assert {"Definition", "SequenceStrategy"} <= set(mortar_seq.__all__)
