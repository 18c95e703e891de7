"""Shell completion: what the NAME completer offers (called directly, on every database), that
it reads without making anything, and that other runs never import it."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mortar_seq.cli import completion, shell

from .conftest import Database
from .test_cli import SCRIPT, ok
from .test_cli_startup import imported_after


def _asked(url: str) -> argparse.Namespace:
    """What argcomplete hands a completer: the command line as parsed so far."""
    return argparse.Namespace(url=url, wait=5.0)


def test_stored_names(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    assert completion.stored_names("", _asked(url)) == []
    ok(tmp_path, "create", "invoice", url=url)
    ok(tmp_path, "create", "ids", "--pooled", url=url)
    ok(tmp_path, "create", "PL", "{year}: Playlist {counter}", url=url)
    assert completion.stored_names("", _asked(url)) == ["PL", "ids", "invoice"]
    assert completion.stored_names("i", _asked(url)) == ["ids", "invoice"]
    assert completion.stored_names("inv", _asked(url)) == ["invoice"]


def test_stored_names_make_nothing(empty_database: Database, tmp_path: Path) -> None:
    """No tables: nothing offered, none created; a missing SQLite file is not made."""
    url = empty_database.url.render_as_string(hide_password=False)
    assert completion.stored_names("", _asked(url)) == []
    engine = empty_database.engine()
    try:
        with engine.connect() as connection:
            assert sa.inspect(connection).get_table_names() == []
    finally:
        engine.dispose()
    missing = tmp_path / "nowhere.sqlite"
    assert completion.stored_names("", _asked(f"sqlite:///{missing}")) == []
    assert not missing.exists()
    assert completion.stored_names("", _asked("postgresql+psycopg://nobody@127.0.0.1:1/x")) == []
    assert completion.stored_names("", _asked("no-such-scheme://")) == []


def test_names_are_completed_where_a_stored_one_is_meant() -> None:
    parser = shell._parser()
    completion.complete_names(parser)
    subparsers = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    completed = {
        command
        for command, subparser in subparsers.choices.items()
        for argument in subparser._actions
        if getattr(argument, "completer", None) is completion.stored_names
    }
    assert completed == {"next", "last", "delete", "restart"}  # create's NAME is a new one


def test_other_runs_import_no_completion(tmp_path: Path) -> None:
    for argv in (["--version"], ["--help"]):
        imported = imported_after(tmp_path, *argv)
        assert not {name for name in imported if name.startswith("argcomplete")}
        assert "mortar_seq.cli.completion" not in imported


def test_a_shell_asking(tmp_path: Path) -> None:
    """The request argcomplete's shell function makes: answered with the stored names where
    the ``completion`` extra is installed, else with nothing and exit status 1 (the shell
    then completes nothing)."""
    ok(tmp_path, "create", "invoice")
    ok(tmp_path, "create", "ids")
    answer = tmp_path / "answer"
    line = "mortar-seq delete i"
    environment = {key: value for key, value in os.environ.items() if key != "MORTAR_SEQ_URL"}
    environment |= {
        "_ARGCOMPLETE": "1",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
    }
    done = subprocess.run(
        [SCRIPT], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )
    found = subprocess.run([sys.executable, "-c", "import argcomplete"], capture_output=True)
    if found.returncode == 0:
        assert done.returncode == 0, done
        assert sorted(answer.read_text().split("\013")) == ["ids", "invoice"]
    else:
        assert (done.returncode, done.stdout, answer.exists()) == (1, "", False)
