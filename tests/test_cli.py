"""The ``mortar-seq`` command line, run as a new user would: in a new folder, with only the
URL they give. Most tests call `main` in this process (as a new process would see it: a fresh
registry, this folder, this environment); a few run the real console script, for what only a
process shows (the entry point, exit statuses, signals, pipes, memory)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from mortar_seq.cli import main

from .conftest import fresh_registry

SCRIPT = shutil.which("mortar-seq", path=str(Path(sys.executable).parent)) or "mortar-seq"
# What a new interpreter does not print (its default warning filters).
_QUIET_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


def run(folder: Path, *args: str, url: str | None = None) -> Done:
    """Run ``mortar-seq ARGS`` in this process, in *folder*, with MORTAR_SEQ_URL set to *url*
    only; a warning the script would print goes to stderr."""
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.chdir(folder),
        _url_variable(url),
        fresh_registry(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        try:
            status = main(list(args))
        except SystemExit as exc:  # argparse: bad usage, --help, --version
            status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    for shown in caught:
        if not issubclass(shown.category, _QUIET_WARNINGS):
            err.write(warnings.formatwarning(shown.message, shown.category, shown.filename, 0))
    return Done(status, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _url_variable(url: str | None) -> Iterator[None]:
    before = os.environ.pop("MORTAR_SEQ_URL", None)
    if url is not None:
        os.environ["MORTAR_SEQ_URL"] = url
    try:
        yield
    finally:
        os.environ.pop("MORTAR_SEQ_URL", None)
        if before is not None:
            os.environ["MORTAR_SEQ_URL"] = before


def script(folder: Path, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``mortar-seq`` console script in a new process in *folder*."""
    environment = {key: value for key, value in os.environ.items() if key != "MORTAR_SEQ_URL"}
    if url is not None:
        environment["MORTAR_SEQ_URL"] = url
    return subprocess.run(
        [SCRIPT, *args], cwd=folder, env=environment, capture_output=True, text=True, timeout=60
    )


def ok(folder: Path, *args: str, url: str | None = None) -> list[str]:
    done = run(folder, *args, url=url)
    assert (done.returncode, done.stderr) == (0, ""), done
    return done.stdout.splitlines()


def fails(folder: Path, *args: str, url: str | None = None) -> str:
    done = run(folder, *args, url=url)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    return done.stderr


def test_the_console_script(tmp_path: Path) -> None:
    """The entry point, its output and its exit statuses, in a process of its own."""
    created = script(tmp_path, "create", "invoice", "--start", "1000")
    assert (created.returncode, created.stdout, created.stderr) == (0, "", "")
    taken = script(tmp_path, "next", "invoice", "-n", "2")
    assert (taken.returncode, taken.stdout, taken.stderr) == (0, "1000\n1001\n", "")
    refused = script(tmp_path, "next", "nope")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == "mortar-seq: no sequence named 'nope'\n"


def test_embedded_default(tmp_path: Path) -> None:
    ok(tmp_path, "create", "invoice", "--start", "1000")
    assert (tmp_path / "mortar_seq.sqlite").exists()
    assert ok(tmp_path, "next", "invoice") == ["1000"]
    assert ok(tmp_path, "next", "invoice", "-n", "3") == ["1001", "1002", "1003"]
    assert ok(tmp_path, "last", "invoice") == ["1003"]
    ok(tmp_path, "create", "minute", "--start", "0", "--reset", "2")
    assert ok(tmp_path, "next", "minute", "-n", "3") == ["0", "1", "0"]
    ok(tmp_path, "create", "unused")
    assert ok(tmp_path, "last", "unused") == []


def test_list(tmp_path: Path) -> None:
    assert "no database file" in fails(tmp_path, "list")  # nothing made here yet
    ok(tmp_path, "create", "b", "--step", "5")
    ok(tmp_path, "create", "a", "--reset", "9")
    ok(tmp_path, "next", "b")
    assert ok(tmp_path, "list") == [
        "a\ttable\tstart=1 step=1 reset=9\tlast=",
        "b\ttable\tstart=1 step=5\tlast=1",  # reset= only where set
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["next", "nope"], "mortar-seq: no sequence named 'nope'"),
        (["last", "nope"], "mortar-seq: no sequence named 'nope'"),
        (["create", "x", "--step", "0"], "mortar-seq: step must not be 0"),
        (["create", "x", "--start", "5", "--reset", "5"], "mortar-seq: reset=5 must lie beyond"),
        (["create", ""], "mortar-seq: a sequence name must have 1 to 100 characters"),
        (["next", "x", "-n", "0"], "mortar-seq: count must be at least 1, not 0"),
        (["--url", "nope://", "list"], "mortar-seq: cannot use 'nope://'"),
        (
            ["--url", "postgresql+psycopg://nobody@127.0.0.1:1/none", "list"],
            "mortar-seq: cannot connect to 'postgresql+psycopg://nobody@127.0.0.1:1/none': "
            "connection failed",
        ),
    ],
)
def test_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    ok(tmp_path, "create", "x")
    stderr = fails(tmp_path, *args)
    assert stderr.startswith(message)
    assert stderr.count("\n") == 1


def test_bad_options_get_usage(tmp_path: Path) -> None:
    stderr = fails(tmp_path, "next", "x", "-n", "many")
    assert "invalid int value: 'many'" in stderr
    assert fails(tmp_path).startswith("usage: mortar-seq")


def test_implementations(tmp_path: Path) -> None:
    ok(tmp_path, "create", "ids", "--pooled")
    assert ok(tmp_path, "next", "ids", "-n", "2") == ["1", "2"]
    assert ok(tmp_path, "next", "ids") == ["1001"]  # a new process reserves a new block
    assert ok(tmp_path, "list")[0].split("\t")[:2] == ["ids", "pooled"]
    stderr = fails(tmp_path, "create", "fast", "--native")
    assert stderr.startswith("mortar-seq: sqlite has no SEQUENCE objects")
    assert "usage" in fails(tmp_path, "create", "both", "--native", "--pooled")


def test_templates_walkthrough(tmp_path: Path, engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    ok(tmp_path, "--url", url, "create", "ID", "{counter}-file")
    assert [ok(tmp_path, "next", "ID", url=url)[0] for _ in range(3)] == [
        "1-file",
        "2-file",
        "3-file",
    ]
    ok(tmp_path, "create", "PL", "{year}: Playlist {counter}", url=url)
    ok(tmp_path, "create", "AF", "{PL} > Audio File {counter:02d}", url=url)
    assert ok(tmp_path, "next", "PL", "year=2015", "-n", "2", url=url) == [
        "2015: Playlist 1",
        "2015: Playlist 2",
    ]
    assert ok(tmp_path, "next", "AF", "PL=2015: Playlist 2", url=url) == [
        "2015: Playlist 2 > Audio File 01"
    ]
    assert ok(tmp_path, "last", "AF", "PL=2015: Playlist 2", url=url) == [
        "2015: Playlist 2 > Audio File 01"
    ]
    ok(tmp_path, "create", "Y", "{year:04d}/{k}/{counter}", url=url)
    assert ok(tmp_path, "next", "Y", "year=15", "k=a=b", url=url) == ["0015/a=b/1"]  # 04d; first =
    assert "AF\ttable\tstart=1 step=1\tpattern={PL} > Audio File {counter:02d}" in ok(
        tmp_path, "list", url=url
    )
    refusals = [
        (["next", "AF", "PL=2015: Playlist 9"], "is not an identifier issued by template 'PL'")
    ]
    if engine.dialect.name == "sqlite":  # the same messages on every database: checked once
        refusals += [
            (["next", "PL"], "needs the keyword 'year'"),
            (["next", "PL", "year"], "expected KEY=VALUE, not 'year'"),
            (["create", "bad", "{x}"], "must hold one {counter} placeholder; it has none"),
            (["create", "bad", "{counter:zz}"], "invalid format for the counter"),
            (["create", "bad", "{counter}", "--reset", "5"], "templates take no --reset"),
            (["next", "nope", "a=1"], "no sequence named 'nope'"),
        ]
    for args, message in refusals:
        assert message in fails(tmp_path, *args, url=url), args
    ok(tmp_path, "create", "plain", url=url)
    assert "it takes no KEY=VALUE" in fails(tmp_path, "next", "plain", "a=1", url=url)


def test_other_databases(tmp_path: Path, engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    ok(tmp_path, "--url", url, "create", "shared", "--start", "7")
    assert ok(tmp_path, "next", "shared", url=url) == ["7"]  # MORTAR_SEQ_URL
    assert ok(tmp_path, "--url", url, "next", "shared", "-n", "2") == ["8", "9"]
    if engine.dialect.name != "sqlite":
        ok(tmp_path, "--url", url, "create", "fast", "--native", "--start", "5")
        assert ok(tmp_path, "--url", url, "next", "fast", "-n", "2") == ["5", "6"]
    assert not (tmp_path / "mortar_seq.sqlite").exists()
