"""The floor-under-contention benchmark's own checks: its three contenders take values from
their series and store them, its check stops a run whose stored values are not each
series' 1..N once each, and its report gives the ratios it claims."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import mortar_seq
from benchmarks import floor_contention
from benchmarks.run import INSERT, bench, core_transactions, library_transactions
from tests.conftest import fresh_registry
from tests.databases import Database


@pytest.fixture
def bench_engine(empty_database: Database) -> Iterator[Engine]:
    engine = empty_database.engine()
    mortar_seq.create_tables(engine)
    bench.create_all(engine)
    with fresh_registry():
        yield engine
    engine.dispose()


def _values_of_each_contender(engine: Engine) -> None:
    with engine.begin() as connection:
        for name in ("floor", "guarded", "library"):
            mortar_seq.register_sequence(name, connection)
        for name in ("floor", "guarded"):
            connection.execute(INSERT, {"value": mortar_seq.get_next_value(connection, name)})
        library = mortar_seq.get_sequence("library", connection)
    for kind in ("session", "connection"):
        core_transactions(engine, "floor", kind)(2)
        floor_contention.guarded_transactions(engine, "guarded", kind)(2)
        library_transactions(engine, library, kind)(3)


def test_the_stored_values_pass_the_check(bench_engine: Engine) -> None:
    _values_of_each_contender(bench_engine)
    floor_contention.check(bench_engine)
    with bench_engine.connect() as connection:
        assert sorted(connection.scalars(sa.select(bench.tables["bench_rows"].c.value))) == [
            1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6,
        ]  # fmt: skip


@pytest.mark.parametrize("stored", [3, 7], ids=["duplicate", "beyond the counters"])
def test_the_check_fails_the_run_on_a_wrong_value(bench_engine: Engine, stored: int) -> None:
    _values_of_each_contender(bench_engine)
    with bench_engine.begin() as connection:
        connection.execute(INSERT, {"value": stored})
    with pytest.raises(SystemExit, match="FAILED"):
        floor_contention.check(bench_engine)


def test_the_report_gives_each_ratio_to_the_floor() -> None:
    def runs(*rates: float) -> list[floor_contention.Measured]:
        return [floor_contention.Measured(rate, 0.5, 2.0) for rate in rates]

    measured = {
        "floor": runs(100.0, 200.0, 100.0),
        "floor again": runs(90.0, 200.0, 110.0),
        "floor with guards": runs(80.0, 200.0, 100.0),
        "next()": runs(95.0, 180.0, 100.0),
    }
    said = floor_contention.report("postgresql", "session", 4, measured)
    assert "next() / floor: median 0.95x, 0.90 to 1.00 (0.95 0.90 1.00)" in said
    assert "floor again / floor: median 1.00x, 0.90 to 1.10 (0.90 1.00 1.10)" in said
    assert "floor with guards / floor: median 1.00x, 0.80 to 1.00 (0.80 1.00 1.00)" in said
