"""The inquiry's index (decision 0020): what it admits is exactly what eligibility could let
through for the scene, merchant and city, over random campaigns on both databases; a merchant
funder is indexed at its own merchant; the migration indexes campaigns that already exist."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from flashpay import db
from flashpay.promotions import Eligibility, Funder, FunderKind, Stacking
from flashpay.promotions.eligibility import refusal
from flashpay.promotions.errors import PromotionRefusal as R
from flashpay.promotions.index import ANY, index_values
from flashpay.promotions.models import promo_campaign_index
from flashpay.promotions.storage import active_campaigns, change_state, create_campaign

from .builders import MERCHANT, NOON_NS, payment, spec

SCENES = ("supermarket", "canteen", "bus")
CITIES = ("Beijing", "Shanghai")
NARROWING = {R.WRONG_SCENE, R.WRONG_MERCHANT, R.WRONG_CITY}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = db.create_engine(database_url)
    yield engine
    engine.dispose()


def test_a_merchant_funder_is_indexed_at_its_own_merchant_only() -> None:
    own = spec(funder=Funder(FunderKind.MERCHANT, MERCHANT))
    assert ("merchant", str(MERCHANT)) in set(index_values(own))
    elsewhere = spec(funder=Funder(FunderKind.MERCHANT, MERCHANT),
                     eligibility=Eligibility(merchant_ids=(MERCHANT + 1,)))  # fmt: skip
    assert list(index_values(elsewhere)) == []  # can never apply: indexed nowhere
    anything = set(index_values(spec()))
    assert anything == {("scene", ANY), ("merchant", ANY), ("city", ANY)}
    far = spec(eligibility=Eligibility(cities=("x" * 41, "Beijing")))
    assert {v for d, v in index_values(far) if d == "city"} == {"Beijing"}


def test_the_index_admits_exactly_what_could_apply(engine: Engine) -> None:
    rng = random.Random(20)
    with engine.begin() as connection:
        for n in range(60):
            funder = (Funder(FunderKind.MERCHANT, rng.choice((MERCHANT, MERCHANT + 1)))
                      if rng.random() < 0.3 else Funder(FunderKind.NETWORK, 1))  # fmt: skip
            rules = Eligibility(
                scenes=tuple(rng.sample(SCENES, rng.randrange(0, 3))),
                merchant_ids=tuple(rng.sample((MERCHANT, MERCHANT + 1, MERCHANT + 2),
                                              rng.randrange(0, 2))),
                cities=tuple(rng.sample(CITIES, rng.randrange(0, 2))),
            )  # fmt: skip
            created = create_campaign(connection, spec=spec(name=f"c{n}", funder=funder,
                                      eligibility=rules, stacking=Stacking.STACKABLE),
                                      now_ns=NOON_NS)  # fmt: skip
            change_state(connection, campaign_id=created.id, action="activate", now_ns=NOON_NS)
        everything = active_campaigns(connection, at_ns=NOON_NS)
        assert len(everything) == 60
        for scene in SCENES:
            for merchant in (MERCHANT, MERCHANT + 1, MERCHANT + 2):
                for city in CITIES:
                    facts = payment(scene=scene, merchant_id=merchant, city=city).facts()
                    could = {c.id for c in everything if refusal(c, facts) not in NARROWING}
                    found = active_campaigns(connection, at_ns=NOON_NS, scene=scene,
                                             merchant_id=merchant, city=city)  # fmt: skip
                    assert {c.id for c in found} == could, (scene, merchant, city)


def test_the_migration_indexes_existing_campaigns(sqlite_url: str) -> None:
    engine = db.create_engine(sqlite_url)
    try:
        with engine.begin() as connection:
            created = create_campaign(connection, spec=spec(), now_ns=NOON_NS)
        config = db.alembic_config(sqlite_url)
        command.downgrade(config, "promotions_index@base")
        command.upgrade(config, "heads")
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(promo_campaign_index.c.dimension, promo_campaign_index.c.value).where(
                    promo_campaign_index.c.campaign_id == created.id
                )
            ).all()
        assert sorted(rows) == [("city", ANY), ("merchant", ANY), ("scene", ANY)]
    finally:
        engine.dispose()
