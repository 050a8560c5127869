"""The EMVCo consumer-presented QR data objects (CPM v1.1 §5 and EMV Book 3 Annex A), as data.

One ``CpmTagSpec`` per tag: its name, its format (``b`` binary, ``n`` numeric BCD, ``cn``
compressed numeric, ``an``/``ans`` text, ``tmpl`` a constructed template), its length bounds in
bytes, and where it may appear. The decoder names tags and renders values from this table; the
validator checks lengths and placement against it; nothing about individual tags is written
anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

PAYLOAD_FORMAT_INDICATOR = "85"
APPLICATION_TEMPLATE = "61"
COMMON_DATA_TEMPLATE = "62"
APPLICATION_TRANSPARENT_TEMPLATE = "63"
COMMON_TRANSPARENT_TEMPLATE = "64"
CPM_VERSION_01 = b"CPV01"


@dataclass(frozen=True, slots=True)
class CpmTagSpec:
    name: str
    fmt: str  # b | n | cn | an | ans | tmpl
    min_len: int = 1
    max_len: int = 255
    parents: frozenset[str] = frozenset()  # "" is the top level


_TOP = frozenset({""})
_APP = frozenset({APPLICATION_TEMPLATE, COMMON_DATA_TEMPLATE})
_TRANSPARENT = frozenset({APPLICATION_TRANSPARENT_TEMPLATE, COMMON_TRANSPARENT_TEMPLATE, *_APP})

CPM_TAGS: dict[str, CpmTagSpec] = {
    "85": CpmTagSpec("Payload Format Indicator", "ans", 5, 5, _TOP),
    "61": CpmTagSpec("Application Template", "tmpl", 1, 255, _TOP),
    "62": CpmTagSpec("Common Data Template", "tmpl", 1, 255, _TOP),
    "63": CpmTagSpec(
        "Application Specific Transparent Template",
        "tmpl",
        1,
        255,
        frozenset({APPLICATION_TEMPLATE}),
    ),
    "64": CpmTagSpec(
        "Common Data Transparent Template", "tmpl", 1, 255, frozenset({COMMON_DATA_TEMPLATE})
    ),
    "4F": CpmTagSpec("Application Definition File (ADF) Name", "b", 5, 16, _APP),
    "50": CpmTagSpec("Application Label", "ans", 1, 16, _APP),
    "57": CpmTagSpec("Track 2 Equivalent Data", "b", 1, 19, _APP),
    "5A": CpmTagSpec("Application PAN", "cn", 1, 10, _APP),
    "5F20": CpmTagSpec("Cardholder Name", "ans", 2, 26, _APP),
    "5F2D": CpmTagSpec("Language Preference", "an", 2, 8, _APP),
    "5F34": CpmTagSpec("Application PAN Sequence Number", "n", 1, 1, _APP),
    "5F50": CpmTagSpec("Issuer URL", "ans", 1, 255, _APP),
    "9F08": CpmTagSpec("Application Version Number", "b", 2, 2, _APP),
    "9F19": CpmTagSpec("Token Requestor ID", "n", 6, 6, _APP),
    "9F24": CpmTagSpec("Payment Account Reference", "an", 29, 29, _APP),
    "9F25": CpmTagSpec("Last 4 Digits of PAN", "n", 2, 2, _APP),
    "9F26": CpmTagSpec("Application Cryptogram", "b", 8, 8, _TRANSPARENT),
    "9F27": CpmTagSpec("Cryptogram Information Data", "b", 1, 1, _TRANSPARENT),
    "9F10": CpmTagSpec("Issuer Application Data", "b", 1, 32, _TRANSPARENT),
    "9F36": CpmTagSpec("Application Transaction Counter", "b", 2, 2, _TRANSPARENT),
    "9F37": CpmTagSpec("Unpredictable Number", "b", 4, 4, _TRANSPARENT),
    "82": CpmTagSpec("Application Interchange Profile", "b", 2, 2, _TRANSPARENT),
    "9F02": CpmTagSpec("Amount, Authorised (Numeric)", "n", 6, 6, _TRANSPARENT),
    "9F03": CpmTagSpec("Amount, Other (Numeric)", "n", 6, 6, _TRANSPARENT),
    "9F1A": CpmTagSpec("Terminal Country Code", "n", 2, 2, _TRANSPARENT),
    "5F2A": CpmTagSpec("Transaction Currency Code", "n", 2, 2, _TRANSPARENT),
    "9A": CpmTagSpec("Transaction Date", "n", 3, 3, _TRANSPARENT),
    "9C": CpmTagSpec("Transaction Type", "n", 1, 1, _TRANSPARENT),
    "95": CpmTagSpec("Terminal Verification Results", "b", 5, 5, _TRANSPARENT),
    "9F34": CpmTagSpec("Cardholder Verification Method Results", "b", 3, 3, _TRANSPARENT),
    "9F6E": CpmTagSpec("Form Factor Indicator", "b", 4, 32, _TRANSPARENT),
    "9F7C": CpmTagSpec("Customer Exclusive Data", "b", 1, 32, _TRANSPARENT),
}


def tag_name(tag: str) -> str:
    spec = CPM_TAGS.get(tag)
    return spec.name if spec is not None else "Unknown"
