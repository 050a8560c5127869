"""``/v1/chain/*`` mounted on an app: checkpoint, proofs, leaves, receipts."""

from __future__ import annotations

import base64

import httpx
import pytest
from fastapi import FastAPI

from flashpay.api.errors import install_error_handlers
from flashpay.chain import merkle, note
from flashpay.chain.api import mount
from flashpay.chain.publisher import Publisher
from flashpay.chain.receipt import TrustPolicy, verify_receipt
from flashpay.chain.service import ChainLog
from flashpay.ledger import Ledger

from .conftest import post_chains

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_chain_routes(ledger: Ledger, log: ChainLog, log_keys: tuple[str, str]) -> None:
    app = FastAPI()
    install_error_handlers(app)
    mount(app, log)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://flashpay.test"
    ) as client:
        await check_routes(client, ledger, log, log_keys)


async def check_routes(
    client: httpx.AsyncClient, ledger: Ledger, log: ChainLog, log_keys: tuple[str, str]
) -> None:
    assert (await client.get("/v1/chain/checkpoint")).status_code == 404
    posted = post_chains(ledger, 5)
    log.sync_from_ledger(ledger)
    publisher = Publisher(log, signer=note.parse_signer(log_keys[0]), witnesses=[], quorum=0)
    checkpoint, _ = publisher.publish()
    publisher.close()

    text = (await client.get("/v1/chain/checkpoint")).text
    opened = note.verify(text, [log_keys[1]])
    assert opened.text.split("\n")[1] == "5"
    leaves = (await client.get("/v1/chain/leaves", params={"start": 1, "limit": 2})).json()[
        "leaves"
    ]
    assert [leaf["leaf_index"] for leaf in leaves] == [1, 2]
    data = base64.b64decode(leaves[0]["data"])
    proof = (await client.get("/v1/chain/proof/inclusion", params={"index": 1, "size": 5})).json()
    merkle.verify_inclusion(
        merkle.leaf_hash(data),
        1,
        5,
        [base64.b64decode(h) for h in proof["proof"]],
        checkpoint.root_hash,
    )
    consistency = await client.get("/v1/chain/proof/consistency", params={"first": 3, "second": 5})
    merkle.verify_consistency(
        3,
        5,
        [base64.b64decode(h) for h in consistency.json()["proof"]],
        log.root(3),
        checkpoint.root_hash,
    )
    receipt = (await client.get(f"/v1/chain/receipts/{posted[2].chain_id}")).json()
    trust = TrustPolicy(note.parse_verifier(log_keys[1]), (), 0)
    assert verify_receipt(receipt, trust).leaf.leaf_index == 2

    too_big = await client.get("/v1/chain/proof/inclusion", params={"index": 1, "size": 99})
    assert too_big.status_code == 400
    assert too_big.json()["error"]["code"] == "invalid_tree_size"
    assert (await client.get("/v1/chain/receipts/12345")).status_code == 404
    assert (await client.get("/v1/chain/leaves", params={"limit": 5000})).status_code == 422
