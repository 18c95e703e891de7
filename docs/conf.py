"""Sphinx configuration for mortar_seq's documentation."""

from __future__ import annotations

import sys
from pathlib import Path

# The recipes are imported by the examples, as a reader would copy them.
sys.path.insert(0, str(Path(__file__).resolve().parent / "recipes"))

project = "mortar_seq"
author = "mortar_seq developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest", "sphinx.ext.intersphinx"]
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
default_role = "py:obj"
# Signatures read ``Session | Connection``, each a link, rather than the full module paths.
python_use_unqualified_type_names = True

# Every cross-reference must resolve (tests/test_docs.py builds with -n -W): a broken link to
# one of the package's own objects, or to Python's or SQLAlchemy's, fails the build.
nitpicky = True

# Links to Python's and SQLAlchemy's documentation. The builds run where only package
# registries are reachable, so each inventory is read from a file kept in _inventories/
# (the projects' own objects.inv, unchanged; its README says where each comes from and how
# to make it again) instead of being downloaded; the links still go to the sites.
_inventories = Path(__file__).resolve().parent / "_inventories"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", str(_inventories / "python-3.11.inv")),
    "sqlalchemy": ("https://docs.sqlalchemy.org/en/21/", str(_inventories / "sqlalchemy-2.1.inv")),
}

# What is let through, and only this. Type variables: autodoc links them by name as classes
# (sphinx-doc/sphinx#8219), but a TypeVar has no page of its own to link to; the signatures
# still show them (``work(session) -> T``).
nitpick_ignore = [
    ("py:class", "mortar_seq.retry.T"),
    ("py:class", "mortar_seq.retry.S"),
    ("py:class", "mortar_seq.retry.AS"),
    ("py:class", "mortar_seq.strategies.registration.Implementation"),
]

# Every ``>>>`` example runs (sphinx-build -b doctest); ``folder`` is a scratch folder.
# Each page starts as a new process would: with an empty registry.
doctest_global_setup = """
import tempfile
import mortar_seq.registry
mortar_seq.registry.registry = mortar_seq.registry.Registry()
folder = tempfile.mkdtemp()
"""
