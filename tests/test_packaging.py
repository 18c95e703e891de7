"""What a user installs: the wheel carries the licence and the migrations; the sdist carries the
tests, the docs and the examples, and its own tests run from it unpacked."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

# One worker builds once for every test here (pytest-xdist's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("packaging")

REPOSITORY = Path(__file__).resolve().parent.parent
# What a clone holds beyond the sources: none of it belongs in a build.
LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "_build", "__pycache__", ".*_cache", "*.sqlite"
)
# What the sdist holds beyond the package (MANIFEST.in): every file of these folders, and these
# files. Not .ci/ nor .gitignore: they belong to the repository.
SDIST_FOLDERS = ("mortar_seq", "tests", "docs", "examples", "benchmarks", "alembic")
SDIST_FILES = (
    "CHANGELOG.rst", "README.md", "LICENSE", "MANIFEST.in", "setup.cfg", "pyproject.toml",
    "alembic.ini", "ruff.toml",
)  # fmt: skip
# Run from the unpacked sdist: pure Python (patterns), the layout read against docs/api.rst, the
# installation page read against setup.cfg. The whole suite runs once, from the clone: running it
# a second time from the sdist would double CI's time for what collection already shows.
SUBSET = (
    "tests/test_pattern.py",
    "tests/test_layout.py",
    "tests/test_docs.py::test_installation_names_every_extra_and_what_it_brings",
)


def test_license_is_mit_for_the_mortar_seq_developers() -> None:
    text = (REPOSITORY / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the mortar_seq developers" in text


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy, so that the build leaves nothing in the working tree.
    copy = tmp_path_factory.mktemp("source") / "mortar_seq"
    shutil.copytree(REPOSITORY, copy, ignore=LEFT_OUT)
    return copy


@pytest.fixture(scope="module")
def built(source: Path) -> tuple[Path, Path]:
    """The sdist and the wheel, as ``python -m build`` makes them: the wheel from the sdist."""
    dist = source.parent / "dist"
    command = [sys.executable, "-m", "build", "-o", str(dist), str(source)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    (sdist,) = dist.glob("mortar_seq-*.tar.gz")
    (wheel,) = dist.glob("mortar_seq-*.whl")
    return sdist, wheel


@pytest.fixture(scope="module")
def unpacked(built: tuple[Path, Path]) -> Path:
    sdist = built[0]
    with tarfile.open(sdist) as archive:
        archive.extractall(sdist.parent, filter="data")
    return sdist.parent / sdist.name.removesuffix(".tar.gz")


@pytest.mark.slow
def test_wheel_holds_license_and_migrations(built: tuple[Path, Path]) -> None:
    wheel = built[1]
    names = zipfile.ZipFile(wheel).namelist()

    licenses = [name for name in names if ".dist-info/" in name and name.endswith("/LICENSE")]
    assert licenses, names
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read(licenses[0]) == (REPOSITORY / "LICENSE").read_bytes()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    assert b"License: MIT" in metadata or b"License-Expression: MIT" in metadata
    assert any(name.startswith("mortar_seq/migrations/") for name in names), names
    # The package and its metadata only: no tests, docs or examples.
    elsewhere = [n for n in names if n.split("/")[0] != "mortar_seq" and ".dist-info/" not in n]
    assert elsewhere == []


@pytest.mark.slow
def test_sdist_holds_the_tests_docs_and_examples(source: Path, unpacked: Path) -> None:
    shipped = {p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file()}
    wanted = {
        p.relative_to(source).as_posix()
        for folder in SDIST_FOLDERS
        for p in (source / folder).rglob("*")
        if p.is_file()
    } | set(SDIST_FILES)
    assert {"tests/conftest.py", "tests/typing/user_code.py", "docs/conf.py"} <= wanted
    assert "tests/plugin_example/pyproject.toml" in wanted
    assert wanted - shipped == set()
    assert [name for name in shipped if name.startswith(".")] == []


@pytest.mark.slow
def test_twine_finds_both_distributions_fit_for_an_index(built: tuple[Path, Path]) -> None:
    command = [sys.executable, "-m", "twine", "check", "--strict", *map(str, built)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2, done.stdout


def _run(command: list[str], folder: Path, env: dict[str, str]) -> tuple[int, str, str]:
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stdout + done.stderr


@pytest.mark.slow
def test_tests_run_from_the_unpacked_sdist(unpacked: Path, tmp_path: Path) -> None:
    # The unpacked sdist's code is imported first, whatever is installed.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(unpacked), env.get("PYTHONPATH")]))
    where = [sys.executable, "-c", "import mortar_seq; print(mortar_seq.__file__)"]
    _, printed, output = _run(where, tmp_path, env)
    assert Path(printed.strip()) == unpacked / "mortar_seq" / "__init__.py", output

    pytest_ = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    status, printed, output = _run([*pytest_, "--collect-only", "-q"], unpacked, env)
    assert status == 0, output
    last = printed.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ tests collected in [\d.]+s", last), output
    modules = {line.split("::")[0] for line in printed.splitlines() if "::" in line}
    every = {f"tests/{p.name}" for p in (unpacked / "tests").glob("test_*.py")}
    assert len(every) > 40
    assert every - modules == set()

    status, _, output = _run([*pytest_, *SUBSET], unpacked, env)
    assert status == 0, output
    assert re.search(r"^=+ \d+ passed in [\d.]+s", output, re.MULTILINE), output
