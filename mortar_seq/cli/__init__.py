"""``mortar-seq``: the command line, a thin shell over the public functions."""

from .shell import main

__all__ = ["main"]
