"""EMVCo QR codes for payment systems: the merchant-presented (MPM v1.1) codec and flashpay's
merchant codes here; the consumer-presented (CPM v1.1) codec in ``flashpay.qr.cpm``, payment codes
in ``flashpay.qr.payment_codes``, PNG/SVG images in ``flashpay.qr.images``.

Public surface of this module::

    decode_mpm(payload) -> MpmPayload          # structure; raises MpmDecodeError(tag, position)
    validate_mpm(decoded) -> list[Violation]   # EMVCo rules
    encode_mpm(objects) -> str                 # appends the CRC; encode(decode(p)) == p
    static_code(fields), dynamic_code(fields, amount=, bill_number=, reference=)
    read_flashpay_code(payload) -> FlashpayCode | None
"""

from flashpay.qr.merchant_codes import (
    FLASHPAY_GUI,
    FlashpayCode,
    MerchantCodeFields,
    dynamic_code,
    read_flashpay_code,
    static_code,
)
from flashpay.qr.mpm import (
    DataObject,
    MpmDecodeError,
    MpmPayload,
    QrError,
    Violation,
    ViolationCode,
    crc16,
    decode_mpm,
    encode_mpm,
    validate_mpm,
)

__all__ = [
    "FLASHPAY_GUI",
    "DataObject",
    "FlashpayCode",
    "MerchantCodeFields",
    "MpmDecodeError",
    "MpmPayload",
    "QrError",
    "Violation",
    "ViolationCode",
    "crc16",
    "decode_mpm",
    "dynamic_code",
    "encode_mpm",
    "read_flashpay_code",
    "static_code",
    "validate_mpm",
]
