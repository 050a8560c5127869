"""Every POST declares ``Idempotency-Key`` in the OpenAPI document (issue 12): the middleware
honours the header on every POST, so a client generated from the document must be able to send
it. (Before, 22 POSTs such as ``/v1/issuer/cards`` and ``/v1/admin/api-keys/{key_id}/revoke``
did not declare it.)"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio


async def test_every_post_declares_the_idempotency_key(world: Any) -> None:
    document = (await world.client.get("/openapi.json")).json()
    posts = {path: ops["post"] for path, ops in document["paths"].items() if "post" in ops}
    assert len(posts) >= 20  # the API's POSTs, not an empty document
    missing = [
        path
        for path, post in posts.items()
        if not any(
            p["name"] == "Idempotency-Key" and p["in"] == "header"
            for p in post.get("parameters", [])
        )
    ]
    assert missing == []
    declared = next(
        p for p in posts["/v1/transfers"]["parameters"] if p["name"] == "Idempotency-Key"
    )
    assert declared["schema"]["maxLength"] == 255
