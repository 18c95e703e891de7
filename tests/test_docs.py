"""The documentation builds without a warning, and its examples run as written."""

from __future__ import annotations

import configparser
import pydoc
import re
import shlex
import shutil
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

import mortar_seq
from mortar_seq.cli import main

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _sphinx(builder: str, output: Path, source: Path = DOCS) -> subprocess.CompletedProcess[str]:
    # Apart, so that the examples start as a new process would. Nitpicky (-n): every
    # reference must resolve, to the package's objects, Python's or SQLAlchemy's.
    command = [sys.executable, "-m", "sphinx", "-n", "-W", "--keep-going", "-q", "-b", builder]
    return subprocess.run(
        [*command, str(source), str(output)], capture_output=True, text=True, check=False
    )


@pytest.mark.slow
def test_html_builds_without_warnings(tmp_path: Path) -> None:
    built = _sphinx("html", tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    assert (tmp_path / "index.html").exists()
    api = (tmp_path / "api.html").read_text()
    # Python's and SQLAlchemy's names link to their documentation (intersphinx).
    assert (
        'href="https://docs.sqlalchemy.org/en/21/orm/session_api.html#sqlalchemy.orm.Session"'
        in api
    )
    assert (
        'href="https://docs.python.org/3/library/collections.abc.html#collections.abc.Iterator"'
        in api
    )


@pytest.mark.slow
def test_a_broken_reference_fails_the_build(tmp_path: Path) -> None:
    source = tmp_path / "docs"
    shutil.copytree(DOCS, source)
    broken = ["mortar_seq.Sequence.no_such_verb", "Session", "sqlalchemy.orm.NoSuchClass"]
    with (source / "api.rst").open("a") as page:
        page.write("\nBroken on purpose: " + ", ".join(f"`{name}`" for name in broken) + ".\n")
    built = _sphinx("dummy", tmp_path / "out", source)
    assert built.returncode != 0
    for name in broken:  # a bare name too: it is let through in one docstring only
        assert f"reference target not found: {name}" in built.stderr, built.stderr


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


def _extras() -> dict[str, list[str]]:
    """setup.cfg's extras but ``test``, each with the projects it installs."""
    config = configparser.ConfigParser()
    config.read(DOCS.parent / "setup.cfg")
    extras = config["options.extras_require"]
    return {
        extra: [re.split(r"[\[<>=]", line)[0] for line in extras[extra].split()]
        for extra in extras
        if extra != "test"
    }


@pytest.mark.parametrize(
    "page", [DOCS / "installation.rst", DOCS.parent / "README.md"], ids=lambda p: p.name
)
def test_installation_names_every_extra_and_what_it_brings(page: Path) -> None:
    text = page.read_text()
    section = text[text.index("Installation") :]
    section = section.split("\n## ")[0]  # the README's section ends at the next one
    assert "pip install mortar_seq\n" in section
    extras = _extras()
    assert set(extras) == {
        "zope",
        "postgresql",
        "mariadb",
        "alembic",
        "asyncio",
        "completion",
        "bench",
    }
    for extra, projects in extras.items():
        assert f"pip install 'mortar_seq[{extra}]'" in section, extra
        for project in projects:
            assert project in section, (extra, project)


def _classes_in(hint: object) -> Iterator[type]:
    if isinstance(hint, type):
        yield hint
    for argument in typing.get_args(hint):
        yield from _classes_in(argument)


def _signature_classes(target: object) -> set[type]:
    """The mortar_seq classes *target*'s annotations name (a class's: its fields' and methods')."""
    hints = [typing.get_type_hints(target)]
    if isinstance(target, type):
        methods = [m for n, m in vars(target).items() if callable(m) and not n.startswith("_")]
        hints += [typing.get_type_hints(method) for method in methods]
    return {
        found
        for hint in hints
        for annotation in hint.values()
        for found in _classes_in(annotation)
        if found.__module__.startswith("mortar_seq")
    }


def test_api_page_documents_every_class_in_public_signatures() -> None:
    page = (DOCS / "api.rst").read_text()
    documented = {
        pydoc.locate(path) for path in re.findall(r"^\.\. auto\w+:: ([\w.]+)$", page, re.MULTILINE)
    }
    seen: set[type] = set()
    waiting = [getattr(mortar_seq, name) for name in mortar_seq.__all__]
    while waiting:
        for found in _signature_classes(waiting.pop()) - seen:
            seen.add(found)
            waiting.append(found)
    assert seen, "no class found in the public signatures"
    assert {cls.__qualname__ for cls in seen - documented} == set()
