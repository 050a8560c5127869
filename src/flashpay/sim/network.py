"""The demo network: institutions, scenes, merchants and cardholders, seeded and deterministic.

All amounts are ints of fen drawn with integer randomness (``randint``/``choices``), so the same
seed always builds the same network and the same traffic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

ISSUERS = (
    ("Bank of China", "621661"),
    ("Industrial and Commercial Bank of China", "622202"),
    ("China Construction Bank", "621700"),
    ("China Merchants Bank", "622588"),
    ("Agricultural Bank of China", "622848"),
)
ISSUER_WEIGHTS = (30, 25, 20, 15, 10)
ACQUIRERS = ("China UMS", "Lakala", "Bank of China Merchant Services")
CITIES = ("Beijing", "Shanghai", "Shenzhen", "Chengdu", "Hangzhou")


@dataclass(frozen=True, slots=True)
class Scene:
    """One of the ten everyday scenes: its MCC, merchant names, prices and busy hours."""

    name: str
    mcc: str
    names: tuple[str, ...]
    prices_fen: tuple[int, int]  # low, high of a typical ticket
    hour_weights: tuple[int, ...]  # 24 weights, one per hour of the day
    share: int  # relative share of the day's payments


def _hours(*peaks: tuple[int, int]) -> tuple[int, ...]:
    weights = [1] * 24
    for hour, weight in peaks:
        weights[hour] = weight
    for h in range(6, 23):
        weights[h] = max(weights[h], 3)
    return tuple(weights)


SCENES = (
    Scene(
        "supermarket",
        "5411",
        ("Wumart", "Yonghui", "Hema Fresh", "CR Vanguard"),
        (1_500, 45_000),
        _hours((18, 14), (19, 16), (20, 12), (11, 6)),
        16,
    ),
    Scene(
        "convenience_store",
        "5499",
        ("FamilyMart", "Lawson", "7-Eleven", "Meiyijia"),
        (300, 4_000),
        _hours((8, 12), (12, 10), (21, 9)),
        18,
    ),
    Scene(
        "campus",
        "8220",
        ("Tsinghua Card Centre", "Fudan Bookstore", "SJTU Print Shop"),
        (100, 6_000),
        _hours((9, 10), (14, 10), (16, 8)),
        6,
    ),
    Scene(
        "canteen",
        "5814",
        ("Campus Canteen No.1", "Laoxiang Ji", "Xibei", "Zhen Gongfu"),
        (800, 3_500),
        _hours((11, 18), (12, 22), (17, 12), (18, 10)),
        16,
    ),
    Scene(
        "bus",
        "4131",
        ("Beijing Bus", "Shanghai Bus", "Shenzhen Bus Group"),
        (100, 300),
        _hours((7, 22), (8, 25), (17, 20), (18, 22)),
        14,
    ),
    Scene(
        "subway",
        "4111",
        ("Beijing Subway", "Shanghai Metro", "Shenzhen Metro"),
        (300, 1_000),
        _hours((7, 24), (8, 28), (17, 22), (18, 26)),
        14,
    ),
    Scene(
        "food_market",
        "5422",
        ("Sanyuanli Market", "Dongjiao Market", "Caishichang"),
        (500, 8_000),
        _hours((6, 10), (7, 14), (8, 12), (17, 8)),
        7,
    ),
    Scene(
        "parking",
        "7523",
        ("ETCP Parking", "Joyo Parking", "Airport P2"),
        (500, 6_000),
        _hours((9, 8), (18, 9), (19, 8)),
        3,
    ),
    Scene(
        "hospital",
        "8062",
        ("Peking Union Hospital", "Ruijin Hospital", "West China Hospital"),
        (2_000, 120_000),
        _hours((8, 10), (9, 14), (10, 12), (14, 8)),
        2,
    ),
    Scene(
        "vending",
        "5814",
        ("Fuhaitang Vending", "Ubox", "Nongfu Kiosk"),
        (200, 800),
        _hours((10, 6), (15, 8), (22, 4)),
        4,
    ),
)


@dataclass(frozen=True, slots=True)
class Merchant:
    index: int
    name: str
    scene: str
    city: str
    acquirer: int


@dataclass(frozen=True, slots=True)
class Card:
    index: int
    user: int
    issuer: int
    credit: bool
    opening_fen: int  # debit: opening deposit; credit: credit limit


@dataclass(frozen=True, slots=True)
class DemoNetwork:
    merchants: tuple[Merchant, ...]
    cards: tuple[Card, ...]
    users: int


def build_network(*, seed: int, users: int, merchants: int) -> DemoNetwork:
    rng = random.Random(seed)
    built_merchants: list[Merchant] = []
    for index in range(merchants):
        scene = SCENES[index % len(SCENES)]
        city = CITIES[rng.randrange(len(CITIES))]
        name = f"{rng.choice(scene.names)} {city} #{index // len(SCENES) + 1}"
        built_merchants.append(
            Merchant(index, name, scene.name, city, rng.randrange(len(ACQUIRERS)))
        )
    cards: list[Card] = []
    for user in range(users):
        for _ in range(rng.choices((1, 2, 3, 4), weights=(40, 35, 18, 7))[0]):
            issuer = rng.choices(range(len(ISSUERS)), weights=ISSUER_WEIGHTS)[0]
            credit = rng.randrange(100) < 35
            if credit:
                opening = rng.choice((5_000, 10_000, 20_000, 50_000)) * 100
            else:  # most debit cards hold a few thousand yuan, some very little
                opening = rng.choice((50, 300, 2_000, 5_000, 12_000, 40_000)) * 100
            cards.append(Card(len(cards), user, issuer, credit, opening))
    return DemoNetwork(tuple(built_merchants), tuple(cards), users)
