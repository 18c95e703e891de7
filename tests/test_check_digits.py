"""Check digits: known vectors, where they may stand, rendered and verified on each database."""

from __future__ import annotations

import pytest

from mortar_seq import TemplateError, register_template
from mortar_seq.patterns.check_digits import luhn, mod97
from mortar_seq.patterns.pattern import counter_in, identifier, parse

from .conftest import Caller


def no_templates(name: str) -> bool:
    return False


@pytest.mark.parametrize(
    ("text", "digit"),
    [
        ("7992739871", "3"),  # the Luhn example
        ("4111 1111 1111 111", "1"),  # a test card number, separators skipped
        ("US037833100", "5"),  # ISIN US0378331005: letters as A=10 ... Z=35
        ("us037833100", "5"),
        ("", "0"),
    ],
)
def test_luhn(text: str, digit: str) -> None:
    assert luhn(text) == digit


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("794", "44"),  # ISO 7064's example
        ("WEST12345698765432GB", "82"),  # IBAN GB82 WEST 1234 5698 7654 32, rearranged
        ("NWBK60161331926819GB", "29"),  # IBAN GB29 NWBK 6016 1331 9268 19
        ("ABNA0417164300NL", "91"),  # IBAN NL91 ABNA 0417 1643 00
        ("ab na-0417 164300nl", "91"),
    ],
)
def test_mod97(text: str, digits: str) -> None:
    assert mod97(text) == digits


def test_a_mod97_checked_text_is_1_modulo_97() -> None:
    for number in range(1, 500, 7):
        text = f"INV/2026/{number:05d}"
        checked = "".join(ch for ch in text if ch.isdigit()) + mod97(text)
        assert int("182331" + checked) % 97 == 1  # I=18, N=23, V=31


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{check:luhn}{counter}", "{check:luhn} must follow the {counter} it covers"),
        ("{year}{check:mod97}-{counter}", "{check:mod97} must follow the {counter}"),
        (
            "{counter}{check:crc}",
            "{check:crc} is no check digit: use {check:luhn} or {check:mod97}",
        ),
        ("{counter}{check}", "{check} is no check digit"),
        ("{counter}{check!s:luhn}", "{check!s:luhn} is no check digit"),
    ],
)
def test_invalid_check_placeholders(pattern: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("{", "\\{").replace("}", "\\}")):
        parse(pattern, "T", no_templates)


def test_rendered_over_everything_before_it() -> None:
    parsed = parse("ACC-{counter:06d}{check:luhn}/{region}{check:mod97}", "T", no_templates)
    assert parsed.keywords == {"region"}
    key = parsed.key({"region": "EU"})
    assert key == "ACC-{counter:06d}{check:luhn}/EU{check:mod97}"
    text = identifier(key, 42)
    assert text[:11] == "ACC-0000421"  # Luhn over A C C 000042 = 101212000042
    assert text[11:] == "/EU" + mod97(text[:14])
    assert counter_in(key, text) == 42
    assert counter_in(key, text[:-1] + str((int(text[-1]) + 1) % 10)) is None


def test_database_series(caller: Caller) -> None:
    with caller.block() as session:
        account = register_template("ACC", "{branch}-{counter:05d}{check:luhn}", session)
        numbers = account.next_many(session, 3, branch="7992")
        assert numbers == [f"7992-0000{n}{luhn('7992' + f'0000{n}')}" for n in (1, 2, 3)]
        assert account.parse(numbers[2]) == ({"branch": "7992"}, 3)
        wrong = numbers[2][:-1] + str((int(numbers[2][-1]) + 1) % 10)
        with pytest.raises(TemplateError, match="is not an identifier of template 'ACC'"):
            account.parse(wrong)
        invoice = register_template("IBANLIKE", "INV{counter:08d}{check:mod97}", session)
        first = invoice.next(session)
        assert first == "INV00000001" + mod97("INV00000001")
        # A child's parent value is verified with its check digits too.
        child = register_template("LINE", "{ACC}/{counter}", session)
        assert child.next(session, ACC=numbers[0]) == numbers[0] + "/1"
        with pytest.raises(TemplateError, match="is not an identifier issued by template 'ACC'"):
            child.next(session, ACC=wrong)
