"""The access-log filter on its own: which query parameters are credentials, and what is kept."""

from __future__ import annotations

import logging

import pytest

from flashpay.api.access_log import RedactCredentials, redact_target


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/v1/me", "/v1/me"),
        ("/v1/me?access_token=fps_x", "/v1/me?access_token=REDACTED"),
        ("/v1/me?token=a&limit=5", "/v1/me?token=REDACTED&limit=5"),
        ("/v1/x?api_key=k&X-Api-Key=k", "/v1/x?api_key=REDACTED&X-Api-Key=REDACTED"),
        ("/v1/x?password=p&client_secret=s", "/v1/x?password=REDACTED&client_secret=REDACTED"),
        ("/v1/x?access%5Ftoken=t", "/v1/x?access%5Ftoken=REDACTED"),
        ("/v1/payments?cursor=abc&limit=2", "/v1/payments?cursor=abc&limit=2"),
        ("/v1/x?token", "/v1/x?token"),
    ],
)  # fmt: skip
def test_redact_target(target, logged):
    assert redact_target(target) == logged


def test_the_filter_rewrites_uvicorns_access_record():
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/v1/me?access_token=fps_secret", "1.1", 401), None,
    )  # fmt: skip
    assert RedactCredentials().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /v1/me?access_token=REDACTED HTTP/1.1" 401'
