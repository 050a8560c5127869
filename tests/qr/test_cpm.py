"""EMVCo CPM codec: real payloads, structural errors with tag and byte offset, rule violations,
byte-identical round trips, fuzzing."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flashpay.qr.cpm import (
    CpmDecodeError,
    decode_cpm,
    decode_tlv,
    encode_cpm,
    encode_tlv,
    validate_cpm,
)
from flashpay.qr.cpm_tags import CPM_TAGS
from flashpay.qr.mpm import ViolationCode

# The CPM specification's example (two applications and a common data template) and a
# UnionPay payment code, both public test vectors.
EMVCO_CPM_EXAMPLE = (
    "hQVDUFYwMWETTwegAAAAVVVVUAhQcm9kdWN0MWETTwegAAAAZmZmUAhQcm9kdWN0MmJJWggSNFZ4kBI0WF8gDkNBUkRIT0"
    "xERVIvRU1WXy0IcnVlc2RlZW5kIZ8QBwYBCgMAAACfJghYT9OF+iNLzJ82AgABnzcEbVjvEw=="
)
UNIONPAY_CPM = (
    "hQVDUFYwMWFWTwigAAADMwEBAlcRYmNgAQBxNnLSMSIBAAABiAFfNAEAYzOfJghWite85mtxi58nAYCfEBEHAAEDoAAAAQ"
    "gwMDAwMDAwMZ82AhEiggIAAJ83BCJgSI4="
)


def b64(hex_text: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_text)).decode()


PFI = "85054350563031"  # 85 05 "CPV01"


@pytest.mark.parametrize("payload", [EMVCO_CPM_EXAMPLE, UNIONPAY_CPM], ids=["emvco", "unionpay"])
def test_real_payloads_decode_validate_and_round_trip(payload):
    decoded = decode_cpm(payload)
    assert decoded.nodes[0].tag == "85"
    assert decoded.nodes[0].display() == "CPV01"
    assert validate_cpm(decoded) == []
    assert encode_cpm(decoded) == payload


def test_emvco_example_tree():
    decoded = decode_cpm(EMVCO_CPM_EXAMPLE)
    apps = decoded.applications()
    assert [a.child("4F").display() for a in apps] == ["A0000000555555", "A0000000666666"]
    assert [a.child("50").display() for a in apps] == ["Product1", "Product2"]
    common = decoded.nodes[3]
    assert common.tag == "62"
    assert common.child("5A").display() == "1234567890123458"
    assert common.child("5F20").display() == "CARDHOLDER/EMV"
    transparent = common.child("64")
    assert transparent.name == "Common Data Transparent Template"
    assert transparent.child("9F26").display() == "584FD385FA234BCC"
    assert transparent.child("9F36").display() == "0001"
    assert transparent.child("9F37").display() == "6D58EF13"
    assert transparent.child("9F10").offset == 91  # offsets count from the payload start


def test_unionpay_track2_and_paths():
    decoded = decode_cpm(UNIONPAY_CPM)
    assert decoded.find("57").display() == "6263600100713672D23122010000018801"
    paths = [path for path, _ in decoded.walk()]
    assert "61.63.9F26" in paths
    assert decoded.find("9F27").display() == "80"


def test_long_length_forms_round_trip():
    url = "https://pay.example.com/" + "x" * 200  # 224 bytes: 81 E0
    payload = encode_cpm([("85", b"CPV01"), ("61", [("4F", bytes(7)), ("5F50", url)])])
    raw = base64.b64decode(payload)
    assert bytes.fromhex("5F5081E0") in raw
    decoded = decode_cpm(payload)
    assert decoded.find("5F50").display() == url
    assert encode_cpm(decoded) == payload
    big = encode_tlv([("9F7C", bytes(300))])
    assert big[:5] == bytes.fromhex("9F7C82012C")


STRUCTURAL = [
    # (name, payload, tag path, byte offset, reason fragment)
    ("not_base64", "hQVD*UFYwMQ==", "", 0, "not Base64"),
    ("non_canonical_base64", b64(PFI)[:-3] + "R==", "", 7, "canonical"),
    ("empty", "", "", 0, "empty"),
    ("pfi_not_first", b64("61034F0100" + PFI), "61", 0, "start with tag 85"),
    ("truncated_length", b64(PFI + "61"), "61", 7, "no length"),
    ("overrun", b64(PFI + "61054F0100"), "61", 7, "overruns"),
    ("nested_overrun", b64(PFI + "61034F0500"), "61.4F", 9, "overruns"),
    ("indefinite_length", b64(PFI + "6180"), "61", 7, "indefinite"),
    ("non_minimal_length", b64(PFI + "6181034F0100"), "61", 7, "shortest form"),
    ("length_too_long", b64(PFI + "6183000003"), "61", 7, "too long"),
    ("truncated_long_length", b64(PFI + "618201"), "61", 7, "truncated length"),
    ("truncated_tag", b64(PFI + "9F"), "", 7, "truncated tag"),
    ("tag_too_long", b64(PFI + "9F8181810100"), "", 7, "longer than 3"),
    ("non_minimal_tag", b64(PFI + "9F800100"), "", 7, "non-minimal"),
    ("padding_byte", b64(PFI + "00"), "", 7, "padding"),
    ("duplicate_in_template", b64(PFI + "61064F01AA4F01BB"), "61.4F", 12, "duplicate"),
    ("duplicate_pfi", b64(PFI + PFI), "85", 7, "duplicate"),
]


@pytest.mark.parametrize(
    ("payload", "tag", "offset", "reason"),
    [case[1:] for case in STRUCTURAL],
    ids=[case[0] for case in STRUCTURAL],
)
def test_structural_errors_name_tag_and_offset(payload, tag, offset, reason):
    with pytest.raises(CpmDecodeError) as caught:
        decode_cpm(payload)
    assert (caught.value.tag, caught.value.offset) == (tag, offset)
    assert reason in caught.value.reason


def test_repeated_application_templates_are_not_duplicates():
    decoded = decode_cpm(b64(PFI + "61034F01AA" + "61034F01BB"))
    assert len(decoded.applications()) == 2


APP = "4F07A0000003330101" + "5A0862123400000000FF"  # a valid application's content


def app(content_hex: str) -> str:
    return f"61{len(content_hex) // 2:02X}{content_hex}"


VIOLATIONS = [
    ("wrong_version", "85054350563032" + app(APP), "85", ViolationCode.BAD_VALUE),
    ("no_application", PFI + "62035A0112", "61", ViolationCode.MISSING_MANDATORY),
    ("no_adf_name", PFI + app("5A0862123400000000FF"), "61[0]", ViolationCode.MISSING_MANDATORY),
    ("no_account", PFI + app("4F07A0000003330101"), "61[0]", ViolationCode.MISSING_MANDATORY),
    ("short_cryptogram", PFI + app(APP + "63059F260201FF"), "61.63.9F26", ViolationCode.BAD_LENGTH),
    ("misplaced_transparent", PFI + app(APP) + "63039F2700", "63", ViolationCode.MISPLACED),
    ("bad_pan_digits", PFI + app("4F07A00000033301015A02AB12"), "61.5A", ViolationCode.BAD_FORMAT),
    ("track2_no_d", PFI + app("4F07A00000033301015703123456"), "61.57", ViolationCode.BAD_FORMAT),
]


@pytest.mark.parametrize(
    ("payload_hex", "tag", "code"),
    [case[1:] for case in VIOLATIONS],
    ids=[case[0] for case in VIOLATIONS],
)
def test_validation_reports_each_violation(payload_hex, tag, code):
    violations = validate_cpm(decode_tlv(bytes.fromhex(payload_hex)))
    assert (tag, code) in {(v.tag, v.code) for v in violations}, violations


def test_non_printable_text_is_a_format_violation():
    decoded = decode_tlv(bytes.fromhex(PFI + app(APP + "500241FF")))
    assert [(v.tag, v.code) for v in validate_cpm(decoded)] == [("61.50", ViolationCode.BAD_FORMAT)]


def test_valid_base_has_no_violations():
    assert validate_cpm(decode_tlv(bytes.fromhex(PFI + app(APP)))) == []


# -- property tests ---------------------------------------------------------------------------

_PRIMITIVES = sorted(t for t, spec in CPM_TAGS.items() if spec.fmt != "tmpl" and t != "85")


@st.composite
def _application(draw):
    tags = draw(st.lists(st.sampled_from(_PRIMITIVES), unique=True, max_size=8))
    items = [(t, draw(st.binary(min_size=0, max_size=140))) for t in tags]
    if draw(st.booleans()):
        items.append(("63", [("9F26", draw(st.binary(min_size=8, max_size=8)))]))
    return ("61", items)


@given(st.lists(_application(), min_size=1, max_size=3))
@settings(max_examples=200, deadline=None)
def test_random_trees_round_trip_byte_identically(apps):
    payload = encode_cpm([("85", b"CPV01"), *apps])
    decoded = decode_cpm(payload)
    assert encode_cpm(decoded) == payload
    assert len(decoded.applications()) == len(apps)


@given(st.binary(max_size=300))
@settings(max_examples=400, deadline=None)
def test_random_bytes_only_raise_the_codec_error(data):
    try:
        decoded = decode_tlv(data)
    except CpmDecodeError:
        return
    assert encode_tlv(decoded.nodes) == data  # whatever decodes re-encodes exactly
    validate_cpm(decoded)


@given(st.data())
@settings(max_examples=400, deadline=None)
def test_mutations_of_real_payloads_only_raise_the_codec_error(data):
    raw = bytearray(base64.b64decode(UNIONPAY_CPM))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        decoded = decode_tlv(bytes(raw))
    except CpmDecodeError:
        return
    assert encode_tlv(decoded.nodes) == bytes(raw)
    validate_cpm(decoded)


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_random_text_only_raises_the_codec_error(text):
    with contextlib.suppress(CpmDecodeError):
        decode_cpm(text)
