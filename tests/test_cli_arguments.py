"""Command-line arguments as people type them: mistyped keywords, a missing name, a
negative wait. Run in-process through main(argv)."""

from __future__ import annotations

from pathlib import Path

import pytest

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
