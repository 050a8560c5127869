"""The pure parts of webhooks: the Stripe-manner signature (sign, verify, each refusal), the
backoff schedule's bounds, the endpoint URL rules and the stable event ids."""

from __future__ import annotations

import random

import pytest

from flashpay.webhooks import SignatureError, event_id, sign_header, verify
from flashpay.webhooks.delivery import BACKOFF_CAP_SECONDS, backoff_seconds
from flashpay.webhooks.endpoints import check_url
from flashpay.webhooks.errors import WebhookError, WebhookRefusal
from flashpay.webhooks.events import EventType
from flashpay.webhooks.signature import SignatureProblem, signature

SECRET = "whsec_test-secret"
BODY = b'{"id":"evt_0","type":"payment.completed"}'
T = 1_795_000_000


def test_a_signed_body_verifies_and_its_timestamp_comes_back():
    assert verify(SECRET, sign_header([SECRET], T, BODY), BODY, now_seconds=T + 10) == T


def test_the_signature_is_hmac_sha256_of_t_dot_body():
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, T, BODY) == expected
    assert sign_header([SECRET], T, BODY) == f"t={T},v1={expected}"


def test_any_of_several_v1_values_may_match():
    header = sign_header(["whsec_old", SECRET], T, BODY)
    assert verify(SECRET, header, BODY, now_seconds=T) == T


@pytest.mark.parametrize(
    ("name", "header", "body", "now", "problem"),
    [
        ("tampered body", None, BODY + b" ", T, SignatureProblem.NO_MATCHING_SIGNATURE),
        ("other secret", "other", BODY, T, SignatureProblem.NO_MATCHING_SIGNATURE),
        ("too old", None, BODY, T + 301, SignatureProblem.TIMESTAMP_OUTSIDE_TOLERANCE),
        ("from the future", None, BODY, T - 301, SignatureProblem.TIMESTAMP_OUTSIDE_TOLERANCE),
        ("no v1", f"t={T}", BODY, T, SignatureProblem.MALFORMED_HEADER),
        ("no t", "v1=abc", BODY, T, SignatureProblem.MALFORMED_HEADER),
        ("garbage", "hello", BODY, T, SignatureProblem.MALFORMED_HEADER),
        ("two t", f"t={T},t={T},v1=ab", BODY, T, SignatureProblem.MALFORMED_HEADER),
        ("huge", "t=1," + "v1=a," * 400, BODY, T, SignatureProblem.MALFORMED_HEADER),
    ],
)
def test_verify_refuses_with_a_named_problem(name, header, body, now, problem):
    if header is None:
        header = sign_header([SECRET], T, BODY)
    elif header == "other":
        header = sign_header(["whsec_other"], T, BODY)
    with pytest.raises(SignatureError) as caught:
        verify(SECRET, header, body, now_seconds=now)
    assert caught.value.problem is problem, name


def test_backoff_doubles_within_jitter_and_is_capped():
    rng = random.Random(3)
    for attempt in range(1, 20):
        ceiling = min(5 * 2 ** (attempt - 1), BACKOFF_CAP_SECONDS)
        for _ in range(50):
            wait = backoff_seconds(attempt, rng)
            assert 0.5 * ceiling <= wait <= ceiling


@pytest.mark.parametrize(
    "url", ["https://shop.example/hooks", "http://127.0.0.1:8080/h?x=1", "https://[::1]:9/x"]
)
def test_good_urls_pass(url):
    assert check_url(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://a.example/" + "x" * 2048, WebhookRefusal.ENDPOINT_URL_TOO_LONG),
        ("ftp://a.example/", WebhookRefusal.INVALID_ENDPOINT_URL),
        ("https://a.example/#frag", WebhookRefusal.INVALID_ENDPOINT_URL),
        ("https://a.example:0/", WebhookRefusal.INVALID_ENDPOINT_URL),
        ("https://a.example/\n", WebhookRefusal.INVALID_ENDPOINT_URL),
        ("", WebhookRefusal.INVALID_ENDPOINT_URL),
    ],
)
def test_bad_urls_are_refused_by_name(url, reason):
    with pytest.raises(WebhookError) as caught:
        check_url(url)
    assert caught.value.reason is reason


def test_event_ids_are_stable_and_distinct_per_fact():
    a = event_id(EventType.PAYMENT_COMPLETED, 42)
    assert a == event_id(EventType.PAYMENT_COMPLETED, 42)
    assert len({a, event_id(EventType.PAYMENT_REFUNDED, 42, 2),
                event_id(EventType.PAYMENT_REFUNDED, 42, 3),
                event_id(EventType.PAYMENT_COMPLETED, 43)}) == 4  # fmt: skip
    assert a.startswith("evt_")
    assert len(a) == 28
