"""The webhooks domain's refusals (``WebhookRefusal``), in the order they are checked."""

from __future__ import annotations

from enum import StrEnum

from flashpay.errors import RefusedError


class WebhookRefusal(StrEnum):
    ENDPOINT_URL_TOO_LONG = "endpoint_url_too_long"  # over URL_CHARS_MAX characters
    INVALID_ENDPOINT_URL = "invalid_endpoint_url"  # not an absolute http(s) URL with a host
    INVALID_EVENT_TYPES = "invalid_event_types"  # empty, or a type we do not send
    INVALID_DESCRIPTION = "invalid_description"  # over 100 characters or not printable
    TOO_MANY_ENDPOINTS = "too_many_endpoints"  # ENDPOINTS_PER_MERCHANT_MAX
    INVALID_EVENT_ID = "invalid_event_id"  # not evt_ and 24 hex digits


class WebhookError(RefusedError):
    """A refused webhooks request (nothing recorded)."""

    reason: WebhookRefusal
