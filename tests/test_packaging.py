"""What a user installs: the wheel carries the licence and the migrations."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
# What a clone holds beyond the sources: none of it belongs in a build.
LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "_build", "__pycache__", ".*_cache", "*.sqlite"
)


def test_license_is_mit_for_the_mortar_seq_developers() -> None:
    text = (REPOSITORY / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the mortar_seq developers" in text


@pytest.mark.slow
def test_wheel_holds_license_and_migrations(tmp_path: Path) -> None:
    # Built from a copy, so that the build leaves nothing in the working tree.
    source = tmp_path / "source"
    shutil.copytree(REPOSITORY, source, ignore=LEFT_OUT)
    wheels = tmp_path / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), "."]
    built = subprocess.run(command, cwd=source, capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("mortar_seq-*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    licenses = [name for name in names if ".dist-info/" in name and name.endswith("/LICENSE")]
    assert licenses, names
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read(licenses[0]) == (REPOSITORY / "LICENSE").read_bytes()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    assert b"License: MIT" in metadata or b"License-Expression: MIT" in metadata
    assert any(name.startswith("mortar_seq/migrations/") for name in names), names
