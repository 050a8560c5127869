"""flashpay payment codes: issue, read back, verify (cryptogram, 60-second window, one use), and
the 19-digit numeric form bound to the same token and counter."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flashpay.qr.cpm import decode_cpm, encode_cpm, validate_cpm
from flashpay.qr.mpm import QrError
from flashpay.qr.payment_codes import (
    AID_CREDIT,
    CODE_LIFETIME_S,
    CodeDecline,
    PaymentCodeError,
    issue_payment_code,
    parse_numeric_code,
    read_payment_code,
    token_key,
    verify_numeric_code,
    verify_payment_code,
)

from .test_cpm import EMVCO_CPM_EXAMPLE, UNIONPAY_CPM
from .test_mpm import PIX

MASTER = bytes(range(32))
LOOKUP = b"numeric-code-lookup-key-32-bytes"
TOKEN = "6231230000000000017"
CARD = "6217850000001234567"  # the real card number, which a code must never carry
T0 = 1_800_000_000
KEY = token_key(MASTER, TOKEN)


def issue(**changes):
    fields = {
        "token": TOKEN,
        "token_expiry": "2812",
        "key": KEY,
        "lookup_key": LOOKUP,
        "atc": 7,
        "now_s": T0,
    }
    fields.update(changes)
    return issue_payment_code(**fields)


def test_code_reads_back_and_is_valid_cpm():
    issued = issue()
    assert read_payment_code(issued.qr_payload) == issued.code
    decoded = decode_cpm(issued.qr_payload)
    assert validate_cpm(decoded) == []
    assert decoded.find("57").display() == f"{TOKEN}D2812201"
    assert decoded.find("9F36").display() == "0007"
    assert CARD not in decoded.find("57").display()
    assert issued.code.expires_at == T0 + CODE_LIFETIME_S


def test_credit_cards_use_the_credit_aid():
    assert read_payment_code(issue(credit=True).qr_payload).aid == AID_CREDIT


def test_unpredictable_numbers_differ_between_codes():
    assert issue().code.unpredictable_number != issue().code.unpredictable_number


@pytest.mark.parametrize(
    ("now", "used", "expected"),
    [
        (T0, set(), None),
        (T0 + CODE_LIFETIME_S - 1, set(), None),
        (T0 + CODE_LIFETIME_S, set(), CodeDecline.EXPIRED),
        (T0 - 60, set(), CodeDecline.NOT_YET_VALID),
        (T0 + 1, {(TOKEN, 7)}, CodeDecline.ALREADY_USED),
        (T0 + 1, {(TOKEN, 8)}, None),
    ],
    ids=["fresh", "last_second", "expired", "future", "replayed", "other_counter_used"],
)
def test_verification_window_and_one_use(now, used, expected):
    code = read_payment_code(issue().qr_payload)
    assert verify_payment_code(code, key=KEY, now_s=now, used=used) is expected


def _tamper(payload: str, tag: str, value: bytes) -> str:
    """Replace one primitive's value anywhere in the tree and re-encode."""

    def rebuild(nodes):
        out = []
        for node in nodes:
            if node.children is not None:
                out.append((node.tag, rebuild(node.children)))
            else:
                out.append((node.tag, value if node.tag == tag else node.value))
        return out

    return encode_cpm(rebuild(decode_cpm(payload).nodes))


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        ("9F36", b"\x00\x08"),  # another counter
        ("9F10", bytes((1, 1)) + (T0 + 3600).to_bytes(4, "big")),  # a later issue time
        ("9F37", b"\x00\x00\x00\x00"),
        ("57", bytes.fromhex("6231230000000000025D2812201F")),  # another token
        ("9F26", bytes(8)),
    ],
    ids=["atc", "issue_time", "unpredictable", "token", "cryptogram"],
)
def test_any_changed_field_breaks_the_cryptogram(tag, value):
    forged = read_payment_code(_tamper(issue().qr_payload, tag, value))
    key = token_key(MASTER, forged.token)
    assert verify_payment_code(forged, key=key, now_s=T0 + 1, used=set()) is (
        CodeDecline.BAD_CRYPTOGRAM
    )


def test_another_tokens_key_does_not_verify():
    code = issue().code
    other = token_key(MASTER, "6231230000000000025")
    assert verify_payment_code(code, key=other, now_s=T0, used=set()) is (
        CodeDecline.BAD_CRYPTOGRAM
    )
    assert token_key(MASTER, TOKEN, key_version=2) != KEY


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (EMVCO_CPM_EXAMPLE, CodeDecline.FOREIGN),  # another network's AID
        (UNIONPAY_CPM, CodeDecline.FOREIGN),  # UnionPay's AID, its own IAD layout
        (PIX, CodeDecline.MALFORMED),  # an MPM payload is not a payment code
        ("hQVDUFYwMQ==", CodeDecline.MALFORMED),  # CPM without an application
    ],
    ids=["emvco_example", "unionpay", "pix_mpm", "no_application"],
)
def test_foreign_and_malformed_codes_are_named(payload, reason):
    with pytest.raises(PaymentCodeError) as caught:
        read_payment_code(payload)
    assert caught.value.reason is reason


def test_numeric_form_is_19_digits_and_bound_to_token_and_counter():
    issued = issue()
    digits = issued.numeric
    assert len(digits) == 19
    assert digits.startswith("62")
    assert digits.isdigit()
    assert parse_numeric_code(digits) == digits
    ok = verify_numeric_code(
        digits, issued.code, key=KEY, lookup_key=LOOKUP, now_s=T0 + 5, used=set()
    )
    assert ok is None
    # Paying with the QR form uses the counter: the numeric form is then a replay.
    replay = verify_numeric_code(
        digits, issued.code, key=KEY, lookup_key=LOOKUP, now_s=T0 + 5, used={(TOKEN, 7)}
    )
    assert replay is CodeDecline.ALREADY_USED
    other = issue(atc=8)
    mismatch = verify_numeric_code(
        digits, other.code, key=KEY, lookup_key=LOOKUP, now_s=T0 + 5, used=set()
    )
    assert mismatch is CodeDecline.BAD_CRYPTOGRAM
    late = verify_numeric_code(
        digits, issued.code, key=KEY, lookup_key=LOOKUP, now_s=T0 + 61, used=set()
    )
    assert late is CodeDecline.EXPIRED


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("626172260294528940", CodeDecline.MALFORMED),  # 18 digits
        ("62617226029452894x5", CodeDecline.MALFORMED),
        ("7261722602945289405", CodeDecline.FOREIGN),
    ],
    ids=["short", "letter", "not_62"],
)
def test_numeric_shape_errors(text, reason):
    with pytest.raises(PaymentCodeError) as caught:
        parse_numeric_code(text)
    assert caught.value.reason is reason


def test_numeric_check_digit_catches_a_mistyped_digit():
    digits = issue().numeric
    wrong = digits[:5] + str((int(digits[5]) + 1) % 10) + digits[6:]
    result = verify_numeric_code(
        wrong, issue().code, key=KEY, lookup_key=LOOKUP, now_s=T0, used=set()
    )
    assert result is CodeDecline.MALFORMED


@pytest.mark.parametrize(
    "changes",
    [
        {"atc": 70000},
        {"token": "62312300000A0000017"},
        {"token_expiry": "28-1"},
        {"key_version": 300},
    ],
    ids=["atc_range", "token_digits", "expiry", "key_version"],
)
def test_bad_inputs_to_issue_are_refused(changes):
    with pytest.raises(QrError):
        issue(**changes)


def test_master_key_must_be_long_enough():
    with pytest.raises(ValueError, match="16 bytes"):
        token_key(b"short", TOKEN)


@given(
    atc=st.integers(0, 0xFFFF),
    un=st.binary(min_size=4, max_size=4),
    now=st.integers(0, 2**32 - 1 - CODE_LIFETIME_S),
    token=st.from_regex(r"\A62[0-9]{11,17}\Z"),
)
@settings(max_examples=100, deadline=None)
def test_any_code_round_trips_and_verifies(atc, un, now, token):
    key = token_key(MASTER, token)
    issued = issue_payment_code(
        token=token,
        token_expiry="3001",
        key=key,
        lookup_key=LOOKUP,
        atc=atc,
        now_s=now,
        unpredictable_number=un,
    )
    code = read_payment_code(issued.qr_payload)
    assert code == issued.code
    assert verify_payment_code(code, key=key, now_s=now, used=set()) is None
    assert len(base64.b64decode(issued.qr_payload)) < 120  # fits a low-version QR code
