"""The inquiry's index: which campaigns can apply to a scene, a merchant, a city — not a scan.

With a thousand campaigns running, "what applies to me here" must not read and parse every
campaign. Two parts (decision 0020):

- **A table** (``promo_campaign_index``) with one row per campaign and value it admits on each
  indexed dimension: its scenes, its merchants (a merchant funder's own merchant when it lists
  none), its cities; ``"*"`` when the dimension is not restricted. It is written by
  ``storage.create_campaign`` in the campaign's own transaction and never changes afterwards,
  because a definition never changes: no index can be out of step with its campaign. The
  campaign's *state* and *budget* are not in it; they are read with the candidates on every
  query, so a pause, an end or a spent budget is seen at once.
- **A cache of parsed definitions**, keyed by the definition text itself (canonical JSON). A
  definition is immutable, so an entry can never be stale, and keying on the text (not on the id)
  keeps databases in one process apart. It saves the JSON parse and the checks of
  ``parse_campaign`` — most of the cost of reading a campaign.

Neither part decides a payment: ``storage.take`` still moves budgets and caps by conditional
UPDATEs, so nothing read here can let a payment exceed a budget. The index only narrows the
candidates; ``eligibility.refusal`` still checks every dimension, so a campaign the index lets
through for the wrong reason is still refused, and one it leaves out could not have applied.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator

import sqlalchemy as sa

from flashpay.promotions.campaigns import CampaignSpec, FunderKind
from flashpay.promotions.definition import parse_campaign
from flashpay.promotions.models import promo_campaign_index

ANY = "*"
VALUE_CHARS = 40  # longer values (a city no merchant can have) are not indexed: they never match
SCENE, MERCHANT, CITY = "scene", "merchant", "city"
SPECS_CACHED_MAX = 20_000


def index_values(spec: CampaignSpec) -> Iterator[tuple[str, str]]:
    """The (dimension, value) rows of one campaign; ``ANY`` for an unrestricted dimension."""
    rules = spec.eligibility
    merchants: tuple[int, ...] = rules.merchant_ids
    if spec.funder.kind is FunderKind.MERCHANT:  # a merchant funds only its own merchant
        if merchants and spec.funder.id not in merchants:
            return  # lists only other merchants: it can never apply, so it is indexed nowhere
        merchants = (spec.funder.id,)
    for dimension, values in (
        (SCENE, rules.scenes),
        (MERCHANT, tuple(str(m) for m in merchants)),
        (CITY, rules.cities),
    ):
        kept = sorted({v for v in values if len(v) <= VALUE_CHARS})
        if not values:
            kept = [ANY]
        for value in kept:
            yield dimension, value


def record(connection: sa.Connection, *, campaign_id: int, spec: CampaignSpec) -> None:
    """Index a new campaign, in the caller's (the campaign's) transaction."""
    rows = [{"dimension": d, "value": v, "campaign_id": campaign_id} for d, v in index_values(spec)]
    if rows:
        connection.execute(promo_campaign_index.insert(), rows)


def narrowed(
    ids: sa.ColumnElement[int],
    *,
    scene: str | None,
    merchant_id: int | None,
    city: str | None,
) -> list[sa.ColumnElement[bool]]:
    """A WHERE clause keeping the campaigns (``ids``) the index admits for each known fact.

    One range scan of the primary key ``(dimension, value)`` per known fact, intersected: the
    database never walks the index by campaign id (which the key does not lead with — a planner
    without statistics on a fresh table would otherwise probe it once per candidate)."""
    x = promo_campaign_index.c
    admitted = [
        sa.select(x.campaign_id).where(x.dimension == dimension, x.value.in_([str(value), ANY]))
        for dimension, value in ((SCENE, scene), (MERCHANT, merchant_id), (CITY, city))
        if value is not None
    ]
    if not admitted:
        return []
    if len(admitted) == 1:
        return [ids.in_(admitted[0])]
    return [ids.in_(sa.intersect(*admitted))]


_specs: OrderedDict[str, CampaignSpec] = OrderedDict()
_lock = threading.Lock()


def spec_of(definition: str) -> CampaignSpec:
    """The parsed spec of a stored definition, parsed once per process (LRU-bounded)."""
    with _lock:
        found = _specs.get(definition)
        if found is not None:
            _specs.move_to_end(definition)
            return found
    spec = parse_campaign(json.loads(definition))
    with _lock:
        _specs[definition] = spec
        if len(_specs) > SPECS_CACHED_MAX:
            _specs.popitem(last=False)
    return spec
