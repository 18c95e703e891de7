"""How the suite itself runs: the serial group really keeps its modules on one worker."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("group", ["serial", "cluster"])
def test_grouped_modules_run_in_one_group(request: pytest.FixtureRequest, group: str) -> None:
    """Under ``--dist loadgroup`` (the README's command), every test marked
    ``xdist_group(group)`` carries the group in its id, which is how pytest-xdist keeps
    them on one worker, one at a time; without the group they run beside other tests."""
    # Set on the workers by pytest-xdist under --dist loadgroup (where "dist" reads "no").
    if not getattr(request.config.option, "loadgroup", False):
        return  # not grouped by design: one process, or another distribution
    marked = [
        item
        for item in request.session.items
        if any(mark.args == (group,) for mark in item.iter_markers("xdist_group"))
    ]
    assert [item.nodeid for item in marked if not item.nodeid.endswith(f"@{group}")] == []
