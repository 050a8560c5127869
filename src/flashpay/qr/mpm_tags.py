"""The EMVCo merchant-presented QR tag table (MPM v1.1 §4), as data.

One ``TagSpec`` per ID or ID range: its name, whether it is a template, its format (``N`` digits,
``ans`` any character, ``S`` a template string), its length bounds and its presence (``M``
mandatory, ``C`` conditional, ``O`` optional). The decoder, the encoder and the validator all read
this table; nothing about individual tags is written anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TagSpec:
    first: int
    last: int
    name: str
    template: bool = False
    fmt: str = "ans"  # N | ans | S
    min_len: int = 1
    max_len: int = 99
    presence: str = "O"  # M | C | O


def _table(*specs: TagSpec) -> dict[str, TagSpec]:
    table: dict[str, TagSpec] = {}
    for spec in specs:
        for n in range(spec.first, spec.last + 1):
            table[f"{n:02d}"] = spec
    return table


TOP_LEVEL = _table(
    TagSpec(0, 0, "Payload Format Indicator", fmt="N", min_len=2, max_len=2, presence="M"),
    TagSpec(1, 1, "Point of Initiation Method", fmt="N", min_len=2, max_len=2),
    TagSpec(2, 3, "Merchant Account Information (Visa)"),
    TagSpec(4, 5, "Merchant Account Information (Mastercard)"),
    TagSpec(6, 8, "Merchant Account Information (EMVCo)"),
    TagSpec(9, 10, "Merchant Account Information (Discover)"),
    TagSpec(11, 12, "Merchant Account Information (Amex)"),
    TagSpec(13, 14, "Merchant Account Information (JCB)"),
    TagSpec(15, 16, "Merchant Account Information (UnionPay)"),
    TagSpec(17, 25, "Merchant Account Information (EMVCo reserved)"),
    TagSpec(26, 51, "Merchant Account Information (template)", template=True, fmt="S"),
    TagSpec(52, 52, "Merchant Category Code", fmt="N", min_len=4, max_len=4, presence="M"),
    TagSpec(53, 53, "Transaction Currency", fmt="N", min_len=3, max_len=3, presence="M"),
    TagSpec(54, 54, "Transaction Amount", max_len=13, presence="C"),
    TagSpec(55, 55, "Tip or Convenience Indicator", fmt="N", min_len=2, max_len=2),
    TagSpec(56, 56, "Value of Convenience Fee Fixed", max_len=13, presence="C"),
    TagSpec(57, 57, "Value of Convenience Fee Percentage", max_len=5, presence="C"),
    TagSpec(58, 58, "Country Code", min_len=2, max_len=2, presence="M"),
    TagSpec(59, 59, "Merchant Name", max_len=25, presence="M"),
    TagSpec(60, 60, "Merchant City", max_len=15, presence="M"),
    TagSpec(61, 61, "Postal Code", max_len=10),
    TagSpec(62, 62, "Additional Data Field Template", template=True, fmt="S"),
    TagSpec(63, 63, "CRC", min_len=4, max_len=4, presence="M"),
    TagSpec(64, 64, "Merchant Information - Language Template", template=True, fmt="S"),
    TagSpec(65, 79, "RFU for EMVCo"),
    TagSpec(80, 99, "Unreserved Template", template=True, fmt="S"),
)

MERCHANT_ACCOUNT_TEMPLATE = _table(
    TagSpec(0, 0, "Globally Unique Identifier", max_len=32, presence="M"),
    TagSpec(1, 99, "Payment network specific"),
)
ADDITIONAL_DATA = _table(
    TagSpec(1, 1, "Bill Number", max_len=25),
    TagSpec(2, 2, "Mobile Number", max_len=25),
    TagSpec(3, 3, "Store Label", max_len=25),
    TagSpec(4, 4, "Loyalty Number", max_len=25),
    TagSpec(5, 5, "Reference Label", max_len=25),
    TagSpec(6, 6, "Customer Label", max_len=25),
    TagSpec(7, 7, "Terminal Label", max_len=25),
    TagSpec(8, 8, "Purpose of Transaction", max_len=25),
    TagSpec(9, 9, "Additional Consumer Data Request", max_len=3),
    TagSpec(10, 10, "Merchant Tax ID", max_len=20),
    TagSpec(11, 11, "Merchant Channel", min_len=3, max_len=3),
    TagSpec(12, 49, "RFU for EMVCo"),
    TagSpec(50, 99, "Payment System specific template", template=True, fmt="S"),
)
LANGUAGE_TEMPLATE = _table(
    TagSpec(0, 0, "Language Preference", min_len=2, max_len=2, presence="M"),
    TagSpec(1, 1, "Merchant Name - Alternate Language", max_len=25, presence="M"),
    TagSpec(2, 2, "Merchant City - Alternate Language", max_len=15),
    TagSpec(3, 99, "RFU for EMVCo"),
)
UNRESERVED_TEMPLATE = MERCHANT_ACCOUNT_TEMPLATE
PAYMENT_SYSTEM_TEMPLATE = MERCHANT_ACCOUNT_TEMPLATE


def sub_table(tag: str) -> dict[str, TagSpec]:
    """The table of the data objects nested in top-level template ``tag``."""
    if tag == "62":
        return ADDITIONAL_DATA
    if tag == "64":
        return LANGUAGE_TEMPLATE
    return MERCHANT_ACCOUNT_TEMPLATE  # 26–51, 80–99, and 62's 50–99
