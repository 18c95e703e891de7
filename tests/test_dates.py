"""Date series: strftime specs take dates, datetimes and ISO text; never the clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mortar_seq import TemplateError, register_template
from mortar_seq.cli import main
from mortar_seq.patterns.pattern import parse

from .conftest import Caller


def no_templates(name: str) -> bool:
    return False


@pytest.mark.parametrize(
    ("spec", "value", "rendered"),
    [
        ("%Y", date(2026, 11, 27), "2026"),
        ("%Y", datetime(2026, 11, 27, 10, 0), "2026"),
        ("%Y", "2026-11-27", "2026"),
        ("%Y-%m", "2026-11-27T10:00:00+01:00", "2026-11"),
        ("%Y%m%d", "2026-11-27", "20261127"),
        ("%Y%m%d", "20261127", "20261127"),
        ("FY%y", date(2026, 1, 2), "FY26"),
        ("%Y-%m-%dT%H", "2026-11-27T10:30:00Z", "2026-11-27T10"),
    ],
)
def test_dates_and_iso_text(spec: str, value: object, rendered: str) -> None:
    parsed = parse(f"{{date:{spec}}}/{{counter}}", "T", no_templates)
    assert parsed.key({"date": value}) == rendered + "/{counter}"


@pytest.mark.parametrize("text", ["2026", "27/11/2026", "tomorrow", "", "2026-13-01"])
def test_text_that_is_no_date_is_refused(text: str) -> None:
    parsed = parse("INV/{date:%Y}/{counter:05d}", "T", no_templates)
    with pytest.raises(TemplateError) as raised:
        parsed.key({"date": text})
    assert str(raised.value) == (
        f"{{date:%Y}} needs a date or datetime (or ISO text such as 2026-11-27), not {text!r}"
    )


def test_a_number_is_no_date() -> None:
    parsed = parse("INV/{date:%Y}/{counter:05d}", "T", no_templates)
    with pytest.raises(TemplateError, match=r"cannot render date=2026 as \{date:%Y\}"):
        parsed.key({"date": 2026})


def test_a_percent_format_is_no_date() -> None:
    parsed = parse("{rate:.1%}-{counter}", "T", no_templates)
    assert parsed.key({"rate": "0.25"}) == "25.0%-{counter}"


def test_the_callers_datetime_as_given_at_the_year_boundary() -> None:
    parsed = parse("INV/{date:%Y}/{counter:05d}", "T", no_templates)
    new_york = timezone(timedelta(hours=-5))
    late = datetime(2026, 12, 31, 23, 30, tzinfo=new_york)  # 2027-01-01 04:30 UTC
    assert parsed.key({"date": late}) == "INV/2026/{counter:05d}"
    assert parsed.key({"date": "2026-12-31T23:30:00-05:00"}) == "INV/2026/{counter:05d}"
    assert parsed.key({"date": late.astimezone(UTC)}) == "INV/2027/{counter:05d}"


def test_a_series_per_year(caller: Caller) -> None:
    new_york = timezone(timedelta(hours=-5))
    with caller.block() as session:
        invoice = register_template("INV", "INV/{date:%Y}/{counter:05d}", session)
        assert invoice.next(session, date=date(2026, 11, 27)) == "INV/2026/00001"
        late = datetime(2026, 12, 31, 23, 30, tzinfo=new_york)
        assert invoice.next(session, date=late) == "INV/2026/00002"
        assert invoice.next(session, date="2026-06-01") == "INV/2026/00003"
        assert invoice.next(session, date=late + timedelta(hours=1)) == "INV/2027/00001"
        assert invoice.last(session, date="2027-12-31") == "INV/2027/00001"
        assert invoice.parse("INV/2026/00003") == ({"date": "2026"}, 3)
        with pytest.raises(TemplateError, match="not an identifier of template 'INV'"):
            invoice.parse("INV/26/00003")
        daily = register_template("DAY", "{date:%Y%m%d}-{counter:03d}", session)
        assert daily.next(session, date="2026-11-27T10:00:00+01:00") == "20261127-001"
        assert daily.next(session, date=date(2026, 11, 27)) == "20261127-002"


def test_command_line_dates_are_iso_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///cli.sqlite"
    assert main(["--url", url, "create", "INV", "INV/{date:%Y}/{counter:05d}"]) == 0
    assert main(["--url", url, "next", "INV", "date=2026-11-27"]) == 0
    assert main(["--url", url, "next", "INV", "date=2026-12-31T23:30:00-05:00"]) == 0
    assert capsys.readouterr().out.split() == ["INV/2026/00001", "INV/2026/00002"]
    assert main(["--url", url, "next", "INV", "date=soon"]) == 1
    assert "{date:%Y} needs a date or datetime" in capsys.readouterr().err
