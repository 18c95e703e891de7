"""``python -m mortar_seq``: the command line, as the ``mortar-seq`` script runs it."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
