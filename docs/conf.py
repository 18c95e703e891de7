"""Sphinx configuration for mortar_seq's documentation."""

from __future__ import annotations

project = "mortar_seq"
author = "mortar_seq developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest"]
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
default_role = "py:obj"
