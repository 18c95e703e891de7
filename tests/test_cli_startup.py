"""How little the command line imports before it works: what keeps ``mortar-seq --version``
fast. Timings are never asserted (benchmarks/cli_startup.py measures them); what is imported
is, each in a new interpreter, as the console script starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import mortar_seq
from mortar_seq.cli import shell
from mortar_seq.strategies import NativeSequence, PooledSequence, TableSequence

# Runs main(ARGV) as the console script does (it imports mortar_seq.cli, then calls main),
# then prints the modules imported, as JSON, on the last line.
_IMPORTED_AFTER = """
import contextlib, io, json, sys
from mortar_seq.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)))
"""


def imported_after(folder: Path, *argv: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTED_AFTER, *argv],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["next", "--help"]])
def test_version_and_help_import_no_sqlalchemy(tmp_path: Path, argv: list[str]) -> None:
    # SQLAlchemy and its ORM are most of a second's start on a slow machine.
    imported = imported_after(tmp_path, *argv)
    assert "mortar_seq.cli" in imported
    assert not {name for name in imported if name.startswith("sqlalchemy")}
    assert (
        imported & {f"mortar_seq.{name}" for name in ("model", "errors", "cli.commands")} == set()
    )


def test_last_and_next_leave_other_verbs_modules_alone(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "mortar_seq", "create", "invoice"], cwd=tmp_path, check=True
    )
    for verb in ("next", "last"):
        imported = imported_after(tmp_path, verb, "invoice")
        assert "mortar_seq.cli.commands" in imported  # it ran
        unused = {"mortar_seq.admin.audit", "mortar_seq.importing", "mortar_seq.retry"}
        assert imported & unused == set(), verb


def test_parser_kinds_are_the_implementations_kinds() -> None:
    kinds = (TableSequence.kind, NativeSequence.kind, PooledSequence.kind)
    assert kinds == (shell.TABLE, shell.NATIVE, shell.POOLED)


def test_the_package_imports_its_names_on_first_use(tmp_path: Path) -> None:
    code = (
        "import sys, mortar_seq; before = 'sqlalchemy' in sys.modules; "
        "from mortar_seq import get_sequence; mortar_seq.Template; "
        "print(before, 'sqlalchemy.orm' in sys.modules, mortar_seq.model.Base.__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["False", "True", "Base"]


@pytest.mark.parametrize("name", mortar_seq.__all__)
def test_every_public_name_is_where_it_was(name: str) -> None:
    value = getattr(mortar_seq, name)
    assert value is getattr(__import__("mortar_seq", fromlist=[name]), name)
    assert name in dir(mortar_seq)
    # Its home module's own object, as the eager imports gave.
    assert getattr(sys.modules[value.__module__], name) is value


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'get_sequnce'"):
        mortar_seq.get_sequnce  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(ImportError):
        from mortar_seq import nothing_here  # type: ignore[attr-defined]  # noqa: F401
    assert not hasattr(mortar_seq, "__main__")  # which would run the command line
