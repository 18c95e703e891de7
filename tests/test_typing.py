"""The public API type-checks as applications use it: ``mypy --strict`` on tests/typing/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

USER_CODE = Path(__file__).resolve().parent / "typing" / "user_code.py"


@pytest.mark.slow
def test_user_code_passes_mypy_strict() -> None:
    # Apart, as a user's CI would run it, from the repository root (its setup.cfg, its cache).
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(USER_CODE)],
        cwd=USER_CODE.parent.parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
