"""EMVCo MPM codec: real payloads, structural errors, rule violations, round trips, fuzzing."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flashpay.money import Money
from flashpay.qr import (
    FLASHPAY_GUI,
    MerchantCodeFields,
    MpmDecodeError,
    ViolationCode,
    crc16,
    decode_mpm,
    dynamic_code,
    encode_mpm,
    read_flashpay_code,
    static_code,
    validate_mpm,
)

# Public payloads whose CRC we verified independently (CRC-16/CCITT-FALSE).
EMVCO_SPEC_EXAMPLE = (
    "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN"
    "5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412"
    "340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A"
)
PROMPTPAY = "00020101021129370016A000000677010111011300668999999995802TH53037646304FE29"
PIX = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR"
    "5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
# VietQR (NAPAS, GUI A000000727; omits 52, 59, 60), QR Ph (GCash), KHQR (NBC SDK vectors); the
# second KHQR sample carries ID 15 in UnionPay's layout (acquirer IIN 8 + forwarding IIN 8 +
# merchant ID 15) and a Khmer alternate-language template 64.
VIETQR = (
    "00020101021238570010A0000007270127000697041501130011001932418"
    "0208QRIBFTTA530370454061200005802VN62170813ung ho lu lut6304C15C"
)
QR_PH = (
    "00020101021127830012com.p2pqrpay0111GXCHPHM2XXX02089996440303152170200000006560417DWQM4TK3J"
    "DNWIWRDY5204601653036085802PH5908Setnayan6011Holy Spirit6104123463045E2D"
)
KHQR = (
    "00020101021229180014jonhsmith@nbcq52045999530311654035005802KH5910Jonh Smith"
    "6010PHNOM PENH99170013173949577872263046894"
)
KHQR_UNIONPAY = (
    "00020101021215311234567812345678ABCDEFGHIJKLMNO29460015john_smith@devb"
    "0111855122334550208Dev Bank52041234530311654031005802KH5910John Smith"
    "6010PHNOM PENH62670106#123450211855122334550311Coffee Shop0709Cashier_1"
    "0810Buy coffee64290002km0108ចន ស្មីន0207ភ្នំពេញ"
    "993400131745915488053011341013543270006304FD7B"
)
FIELDS = MerchantCodeFields(
    merchant_id="102100000000001",
    terminal_id="T0001",
    name="Campus Canteen No.1",
    city="Beijing",
    mcc="5814",
    acquirer_iin="48020000",
    forwarding_iin="00010000",
)


def with_crc(body_without_crc: str) -> str:
    body = body_without_crc + "6304"
    return body + crc16(body)


POSITIVE = {
    "emvco_spec_example": EMVCO_SPEC_EXAMPLE,
    "promptpay": PROMPTPAY,
    "pix": PIX,
    "vietqr": VIETQR,
    "qr_ph": QR_PH,
    "khqr": KHQR,
    "khqr_unionpay_id15": KHQR_UNIONPAY,
    "flashpay_static": static_code(FIELDS),
    "flashpay_dynamic": dynamic_code(
        FIELDS, amount=Money.parse("23.72", "CNY"), bill_number="B42", reference="ORD-42"
    ),
}


@pytest.mark.parametrize("payload", POSITIVE.values(), ids=POSITIVE.keys())
def test_real_payloads_decode_and_round_trip(payload):
    decoded = decode_mpm(payload)
    assert decoded.objects[0].id == "00"
    assert decoded.objects[-1].id == "63"
    assert encode_mpm(decoded) == payload


def test_emvco_example_fields():
    decoded = decode_mpm(EMVCO_SPEC_EXAMPLE)
    assert decoded.value("59") == "BEST TRANSPORT"
    assert decoded.value("54") == "23.72"
    assert decoded.get("64").child("01").value == "最佳运输"  # lengths count characters
    assert decoded.get("62").child("07").value == "A6008667"
    assert decoded.get("91").name == "Unreserved Template"
    assert validate_mpm(decoded) == []


def test_national_profile_decodes_but_reports_missing_fields():
    violations = validate_mpm(decode_mpm(PROMPTPAY))  # PromptPay omits 52, 59, 60
    assert {(v.tag, v.code) for v in violations} == {
        ("52", ViolationCode.MISSING_MANDATORY),
        ("59", ViolationCode.MISSING_MANDATORY),
        ("60", ViolationCode.MISSING_MANDATORY),
    }


@pytest.mark.parametrize("payload", [QR_PH, KHQR, KHQR_UNIONPAY], ids=["qr_ph", "khqr", "khqr15"])
def test_conforming_national_payloads_have_no_violations(payload):
    assert validate_mpm(decode_mpm(payload)) == []


def test_unionpay_id15_layout():
    decoded = decode_mpm(KHQR_UNIONPAY)
    unionpay = decoded.get("15")
    assert unionpay.name == "Merchant Account Information (UnionPay)"
    assert unionpay.children is None
    value = unionpay.value  # acquirer IIN, forwarding IIN, merchant ID
    assert (value[:8], value[8:16], value[16:]) == ("12345678", "12345678", "ABCDEFGHIJKLMNO")
    assert decoded.get("64").child("01").value == "ចន ស្មីន"


def test_vietqr_profile_reports_what_it_omits():
    codes = {(v.tag, v.code) for v in validate_mpm(decode_mpm(VIETQR))}
    assert codes == {
        ("52", ViolationCode.MISSING_MANDATORY),
        ("59", ViolationCode.MISSING_MANDATORY),
        ("60", ViolationCode.MISSING_MANDATORY),
    }


@pytest.mark.parametrize(
    "payload",
    [POSITIVE["flashpay_static"], POSITIVE["flashpay_dynamic"]],
    ids=["static", "dynamic"],
)
def test_flashpay_codes_pass_both_levels(payload):
    assert validate_mpm(decode_mpm(payload)) == []


def test_flashpay_dynamic_code_reads_back():
    code = read_flashpay_code(POSITIVE["flashpay_dynamic"])
    assert code is not None
    assert code.dynamic
    assert code.amount == Money.parse("23.72", "CNY")
    assert (code.merchant_id, code.terminal_id, code.bill_number, code.reference) == (
        FIELDS.merchant_id,
        "T0001",
        "B42",
        "ORD-42",
    )
    static = read_flashpay_code(POSITIVE["flashpay_static"])
    assert static is not None
    assert not static.dynamic
    assert static.amount is None
    unionpay = decode_mpm(POSITIVE["flashpay_static"]).value("15")
    assert unionpay == "48020000" + "00010000" + FIELDS.merchant_id
    assert decode_mpm(POSITIVE["flashpay_static"]).get("26").child("00").value == FLASHPAY_GUI


@pytest.mark.parametrize("payload", [PIX, PROMPTPAY, EMVCO_SPEC_EXAMPLE], ids=["pix", "pp", "emv"])
def test_foreign_codes_are_not_flashpay_codes(payload):
    assert read_flashpay_code(payload) is None


NEGATIVE = {
    "bad_crc": (PROMPTPAY[:-1] + "A", "63", 66),
    "lowercase_crc_is_fine_but_wrong_value_is_not": (PIX[:-4] + "1d3e", "63", PIX.index("6304")),
    "length_overruns": ("000201010211" + "5999ABC", "59", 12),
    "duplicate_tag": (with_crc("000201" + "5802CN" + "5802CN"), "58", 12),
    "00_not_first": (with_crc("5802CN000201"), "58", 0),
    "63_not_last": ("00020163041234" + "5802CN", "63", 6),
    "id_not_digits": (with_crc("0002015A02CN"), "5A", 6),
    "length_not_digits": (with_crc("000201580xCN"), "58", 6),
    "truncated_object": ("00020158", "", 6),
    "zero_length": (with_crc("0002015800"), "58", 6),
    "nested_overrun": (with_crc("000201" + "62080105ABCDE"), "62.01", 10),
}


@pytest.mark.parametrize(("payload", "tag", "position"), NEGATIVE.values(), ids=NEGATIVE.keys())
def test_structural_errors_name_tag_and_position(payload, tag, position):
    with pytest.raises(MpmDecodeError) as error:
        decode_mpm(payload)
    assert error.value.tag == tag
    assert error.value.position == position


def test_lowercase_crc_accepted():
    lower = PIX[:-4] + PIX[-4:].lower()
    assert decode_mpm(lower).value("63") == PIX[-4:].lower()


def _valid_objects(**overrides: object) -> list[tuple[str, object]]:
    base: dict[str, object] = {
        "00": "01",
        "01": "12",
        "26": [("00", "COM.EXAMPLE"), ("01", "M1")],
        "52": "5411",
        "53": "156",
        "54": "10.00",
        "58": "CN",
        "59": "Shop",
        "60": "Beijing",
    }
    base.update(overrides)
    return [(k, v) for k, v in sorted(base.items()) if v is not None]


VC = ViolationCode
VIOLATIONS = {
    "missing_mcc": (_valid_objects(**{"52": None}), "52", ViolationCode.MISSING_MANDATORY),
    "name_too_long": (_valid_objects(**{"59": "X" * 26}), "59", ViolationCode.BAD_LENGTH),
    "city_too_long": (_valid_objects(**{"60": "C" * 16}), "60", ViolationCode.BAD_LENGTH),
    "mcc_not_digits": (_valid_objects(**{"52": "54A1"}), "52", ViolationCode.BAD_FORMAT),
    "currency_length": (_valid_objects(**{"53": "1560"}), "53", ViolationCode.BAD_LENGTH),
    "amount_not_decimal": (_valid_objects(**{"54": "1,00"}), "54", ViolationCode.BAD_FORMAT),
    "country_lowercase": (_valid_objects(**{"58": "cn"}), "58", ViolationCode.BAD_FORMAT),
    "bad_initiation": (_valid_objects(**{"01": "13"}), "01", ViolationCode.BAD_VALUE),
    "no_merchant_account": (
        _valid_objects(**{"26": None}),
        "02-51",
        ViolationCode.NO_MERCHANT_ACCOUNT,
    ),
    "template_without_gui": (
        _valid_objects(**{"26": [("01", "M1")]}),
        "26",
        ViolationCode.TEMPLATE_WITHOUT_GUI,
    ),
    "fee_without_indicator": (
        _valid_objects(**{"56": "1.00"}),
        "56",
        ViolationCode.TIP_FEE_COMBINATION,
    ),
    "indicator_02_without_fee": (
        _valid_objects(**{"55": "02"}),
        "56",
        ViolationCode.TIP_FEE_COMBINATION,
    ),
    "indicator_03_without_percent": (
        _valid_objects(**{"55": "03"}),
        "57",
        ViolationCode.TIP_FEE_COMBINATION,
    ),
    "percent_over_100": (
        _valid_objects(**{"55": "03", "57": "101"}),
        "57",
        ViolationCode.BAD_FORMAT,
    ),
    "language_without_name": (
        _valid_objects(**{"64": [("00", "ZH")]}),
        "64.01",
        ViolationCode.MISSING_MANDATORY,
    ),
}


@pytest.mark.parametrize(("objects", "tag", "code"), VIOLATIONS.values(), ids=VIOLATIONS.keys())
def test_validation_reports_each_violation(objects, tag, code):
    violations = validate_mpm(decode_mpm(encode_mpm(objects)))
    assert (tag, code) in {(v.tag, v.code) for v in violations}


def test_valid_base_has_no_violations():
    assert validate_mpm(decode_mpm(encode_mpm(_valid_objects()))) == []
    tip = _valid_objects(**{"55": "02", "56": "1.50"})
    assert validate_mpm(decode_mpm(encode_mpm(tip))) == []


_text = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x4E2D, exclude_categories=("Cs",)),
    min_size=1,
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(
    name=_text,
    city=_text,
    extra=st.dictionaries(st.sampled_from(["61", "65", "70", "79"]), _text, max_size=3),
    bill=_text,
)
def test_random_field_sets_round_trip(name, city, extra, bill):
    objects = _valid_objects(**{"59": name, "60": city, "62": [("01", bill)], **extra})
    payload = encode_mpm(objects)
    decoded = decode_mpm(payload)
    assert encode_mpm(decoded) == payload
    assert decoded.value("59") == name
    assert decoded.get("62").child("01").value == bill


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_mutations_only_raise_the_codec_error(data):
    payload = data.draw(st.sampled_from(list(POSITIVE.values())))
    position = data.draw(st.integers(0, len(payload) - 1))
    replacement = data.draw(st.text(max_size=3))
    cut = data.draw(st.integers(0, 2))
    mutated = payload[:position] + replacement + payload[position + cut :]
    with contextlib.suppress(MpmDecodeError):  # anything else fails the test
        decode_mpm(mutated)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_random_text_only_raises_the_codec_error(text):
    with contextlib.suppress(MpmDecodeError):  # anything else fails the test
        decode_mpm(text)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "flashpay.cli", "qr", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_decode_prints_json_and_exits_2_on_bad_input():
    out = _cli("decode", EMVCO_SPEC_EXAMPLE)
    assert out.returncode == 0
    objects = json.loads(out.stdout)
    assert objects[0] == {"id": "00", "name": "Payload Format Indicator", "value": "01"}
    assert any(o["id"] == "62" and "template" in o for o in objects)
    bad = _cli("decode", PROMPTPAY[:-1] + "0")
    assert bad.returncode == 2
    assert "tag 63 at character 66" in bad.stderr


def test_cli_validate_and_encode():
    assert _cli("validate", PROMPTPAY).returncode == 1
    built = _cli(
        "encode",
        "--merchant-id", FIELDS.merchant_id, "--name", "Wumart", "--city", "Beijing",
        "--mcc", "5411", "--amount", "9.90", "--bill-number", "B1",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    payload = built.stdout.strip()
    assert _cli("validate", payload).returncode == 0
    assert read_flashpay_code(payload).amount == Money.parse("9.90", "CNY")
    too_long = _cli(
        "encode", "--merchant-id", FIELDS.merchant_id, "--name", "N" * 26, "--city", "Beijing",
        "--mcc", "5411",
    )  # fmt: skip
    assert too_long.returncode == 2
