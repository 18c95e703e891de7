"""The documentation builds without a warning, and its examples run as written."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mortar_seq.cli import main

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _sphinx(builder: str, output: Path) -> subprocess.CompletedProcess[str]:
    # Apart, so that the examples start as a new process would.
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder]
    return subprocess.run(
        [*command, str(DOCS), str(output)], capture_output=True, text=True, check=False
    )


@pytest.mark.slow
def test_html_builds_without_warnings(tmp_path: Path) -> None:
    built = _sphinx("html", tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "index.html").exists()


@pytest.mark.slow
def test_every_example_runs(tmp_path: Path) -> None:
    ran = _sphinx("doctest", tmp_path)
    report = (tmp_path / "output.txt").read_text()
    assert ran.returncode == 0, report + ran.stderr
    assert re.search(r"^ +(\d+) tests\n +0 failures in tests$", report, re.MULTILINE), report
    tested = int(re.findall(r"^ +(\d+) tests$", report, re.MULTILINE)[-1])
    examples = sum(page.read_text().count(">>> ") for page in DOCS.glob("*.rst"))
    assert tested >= examples > 0  # none left out as a literal block


def _console_examples(page: Path) -> list[tuple[str, list[str]]]:
    """The ``$ mortar-seq ...`` lines of *page*'s console blocks, each with the lines it prints."""
    examples: list[tuple[str, list[str]]] = []
    for block in re.findall(r"\.\. code-block:: console\n\n((?:   .*\n|\n)+)", page.read_text()):
        for line in block.splitlines():
            text = line[3:]
            if text.startswith("$ mortar-seq "):
                examples.append((text[2:], []))
            elif text and examples:
                examples[-1][1].append(text)
    return examples


def test_command_line_examples_print_what_the_page_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MORTAR_SEQ_URL", raising=False)
    examples = _console_examples(DOCS / "cli.rst")
    assert len(examples) >= 8
    for command, printed in examples:
        status = main(shlex.split(command)[1:])
        assert (status, capsys.readouterr().out.splitlines()) == (0, printed), command
