"""Command-line arguments as people type them: mistyped keywords, a missing name, a
negative wait. Run in-process through main(argv)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from mortar_seq.cli import main


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MORTAR_SEQ_URL", raising=False)
    assert main(["create", "T", "{dept}/{year}-{counter}"]) == 0
    assert main(["create", "S"]) == 0
    return tmp_path


def test_an_unknown_template_keyword_is_refused_naming_the_patterns(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: 'detp=b' was silently ignored and a value was taken.
    capsys.readouterr()
    for verb in (["next"], ["last"], ["restart", "T", "5"]):
        argv = [*verb, "T"] if verb != ["restart", "T", "5"] else verb
        assert main([*argv, "dept=a", "year=1", "detp=b"]) == 1
        err = capsys.readouterr().err
        assert err == (
            "mortar-seq: 'T' has no keyword 'detp': its pattern '{dept}/{year}-{counter}' "
            "takes dept, year\n"
        )
    assert main(["last", "T", "dept=a", "year=1"]) == 0
    assert capsys.readouterr().out == ""  # nothing was taken


def test_a_missing_name_does_not_claim_keywords_are_required(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: "the following arguments are required: NAME, KEY=VALUE".
    for verb in ("next", "last"):
        with pytest.raises(SystemExit) as exited:
            main([verb])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert err.endswith("error: the following arguments are required: NAME\n")
    assert main(["next", "S"]) == 0
    assert capsys.readouterr().out == "1\n"


@pytest.mark.parametrize("wait", ["-1", "nan", "inf", "soon"])
def test_a_wait_that_is_no_duration_is_refused(
    here: Path, capsys: pytest.CaptureFixture[str], wait: str
) -> None:
    # Before: --wait -1 was accepted.
    with pytest.raises(SystemExit) as exited:
        main(["--wait", wait, "next", "S"])
    assert exited.value.code == 2
    assert "--wait: expected a number of seconds, 0 or more" in capsys.readouterr().err
    assert main(["--wait", "0", "next", "S"]) == 0


def test_next_last_and_audit_speak_json(
    here: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: --json was "unrecognized arguments" for next, last and audit (list had it).
    capsys.readouterr()
    assert main(["next", "S", "-n", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [1, 2, 3]
    assert main(["next", "T", "dept=HR", "year=2026", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == ["HR/2026-1"]
    assert main(["last", "S", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"name": "S", "last": 3}
    assert main(["last", "T", "dept=HR", "year=1999", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"name": "T", "last": None}

    engine = sa.create_engine(f"sqlite:///{here / 'mortar_seq.sqlite'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE ledger (id INTEGER PRIMARY KEY, n INTEGER)")
        connection.exec_driver_sql("INSERT INTO ledger (n) VALUES (1), (2), (4), (4)")
    engine.dispose()
    assert main(["audit", "ledger", "n", "--json"]) == 1  # not clean: still exit 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "count": 4,
        "first": 1,
        "last": 4,
        "gaps": [[3, 3]],
        "duplicates": {"4": 2},
        "off_series": [],
        "clean": False,
    }
    assert "is not clean" in captured.err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer", ["", "n", "no", "nope"])
def test_delete_asks_on_a_terminal(
    here: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    # Before: delete removed a series and its history without a word.
    monkeypatch.setattr("sys.stdin", _Terminal(answer + "\n"))
    capsys.readouterr()
    assert main(["delete", "S"]) == 1
    captured = capsys.readouterr()
    assert "delete sequence 'S' and the values it handed out? [y/N] " in captured.out
    assert captured.err == "mortar-seq: 'S' was not deleted\n"
    assert main(["last", "S"]) == 0  # still there


def test_delete_yes_and_a_confirmed_delete(
    here: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    assert main(["delete", "S"]) == 0
    monkeypatch.setattr("sys.stdin", _Terminal(""))  # --yes asks nothing
    capsys.readouterr()
    assert main(["delete", "T", "--yes"]) == 0
    assert capsys.readouterr() == ("", "")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: a script, as before
    assert main(["create", "U"]) == 0
    assert main(["delete", "U"]) == 0
    assert main(["list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
