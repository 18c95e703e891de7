"""Sphinx configuration for mortar_seq's documentation."""

from __future__ import annotations

import sys
from pathlib import Path

# The recipes are imported by the examples, as a reader would copy them.
sys.path.insert(0, str(Path(__file__).resolve().parent / "recipes"))

project = "mortar_seq"
author = "mortar_seq developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest"]
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
default_role = "py:obj"

# Every ``>>>`` example runs (sphinx-build -b doctest); ``folder`` is a scratch folder.
# Each page starts as a new process would: with an empty registry.
doctest_global_setup = """
import tempfile
import mortar_seq.registry
mortar_seq.registry.registry = mortar_seq.registry.Registry()
folder = tempfile.mkdtemp()
"""
