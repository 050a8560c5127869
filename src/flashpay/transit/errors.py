"""The transit service's refusals (the gate's refusals of a ride code are ``codes.RideRefusal``,
values a gate answers, not errors)."""

from __future__ import annotations

from enum import StrEnum

from flashpay.errors import RefusedError


class TransitRefusal(StrEnum):
    """Why the network refuses a transit request, in check order."""

    UNKNOWN_TOKEN = "transit_unknown_token"  # no bound card under this token (or not yours)
    BAD_DEVICE_KEY = "transit_bad_device_key"  # not a 32-byte Ed25519 public key
    BAD_CREDIT_LIMIT = "transit_bad_credit_limit"  # below the daily cap or above the maximum
    UNKNOWN_CONCESSION = "transit_unknown_concession"
    TOKEN_DENY_LISTED = "transit_token_deny_listed"  # an unpaid debit: pay it first
    NO_OPERATOR = "transit_no_operator"  # no merchant operates this network
    NOT_OPERATOR = "transit_not_operator"  # the caller operates no transit network
    TOO_MANY_TAPS = "transit_too_many_taps"
    UNKNOWN_STATION = "transit_unknown_station"
    TRIP_NOT_FOUND = "transit_trip_not_found"
    NOT_DISPUTABLE = "transit_not_disputable"  # only a trip without a tap-out is disputed


class TransitError(RefusedError, ValueError):
    reason: TransitRefusal
