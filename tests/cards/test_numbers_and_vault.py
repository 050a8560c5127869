"""Card numbers (parsing, Luhn, masking, generation) and the key ring (AES-GCM vault with key
rotation and bound context; keys.json created once, 0600, and agreed on by concurrent loads)."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from flashpay.cards.numbers import (
    CardNumber,
    CardNumberError,
    generate_card_number,
    luhn_check_digit,
    luhn_ok,
)
from flashpay.keys import KEYS_FILE_NAME, KeyConfigError, KeyRing

BOC_DEBIT = "6216610200016585"  # Luhn-valid, Bank of China's 621661


# -- card numbers -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("6216610200016585", "6216610200016585"),
        ("6216 6102 0001 6585", "6216610200016585"),
        ("6216-6102-0001-6585", "6216610200016585"),
        ("4111111111119", "4111111111119"),  # 13 digits
        ("6222020200112233446", "6222020200112233446"),  # 19 digits
    ],
    ids=["plain", "spaces", "dashes", "13_digits", "19_digits"],
)
def test_parse_accepts(text: str, digits: str) -> None:
    assert CardNumber.parse(text).reveal() == digits


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not_digits"),
        ("6216610200016585a", "not_digits"),
        ("６２１６６１０２０００１６５８７", "not_digits"),  # full-width digits are not ASCII
        ("6216 6102\t0001 6585", "not_digits"),
        ("621661020001654", "luhn"),  # 15 digits, but the check digit is wrong
        ("411111111111", "bad_length"),  # 12
        ("62220202001122334460", "bad_length"),  # 20
        ("6216610200016587", "luhn"),
    ],
    ids=["empty", "letter", "fullwidth", "tab", "luhn_15", "12_digits", "20_digits", "luhn"],
)
def test_parse_refuses_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(CardNumberError) as raised:
        CardNumber.parse(text)
    assert raised.value.reason == reason
    assert "6216610200016585"[:12] not in str(raised.value)


def test_luhn() -> None:
    assert luhn_check_digit("621661020001658") == "5"
    assert luhn_ok("79927398713")  # the textbook example
    assert not luhn_ok("79927398710")
    assert not luhn_ok("7")
    # Every single-digit error is caught.
    for position in range(len(BOC_DEBIT)):
        for digit in "0123456789":
            if digit != BOC_DEBIT[position]:
                assert not luhn_ok(BOC_DEBIT[:position] + digit + BOC_DEBIT[position + 1 :])


def test_the_number_never_prints(caplog: pytest.LogCaptureFixture) -> None:
    card = CardNumber.parse(BOC_DEBIT)
    assert str(card) == "621661******6585"
    assert repr(card) == "CardNumber(621661******6585)"
    assert f"{card}" == "621661******6585"
    assert f"{card!r}" == "CardNumber(621661******6585)"
    assert "%s %r" % (card, card) == "621661******6585 CardNumber(621661******6585)"  # noqa: UP031
    assert BOC_DEBIT not in repr([card, {"card": card}])
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("paying with %s", card)
    assert BOC_DEBIT not in caplog.text
    assert (card.first6, card.last4) == ("621661", "6585")
    long = CardNumber.parse("6222020200112233446")
    assert long.masked == "622202*********3446"
    assert long.prefixes() == ["62220202", "6222020", "622202"]


def test_card_numbers_are_values() -> None:
    assert CardNumber.parse("6216 6102 0001 6585") == CardNumber.parse(BOC_DEBIT)
    with pytest.raises(AttributeError):
        CardNumber.parse(BOC_DEBIT)._digits = "0"  # type: ignore[misc]


@pytest.mark.parametrize(("prefix", "length"), [("621661", 16), ("6259070", 19), ("623123", 13)])
def test_generate_card_number(prefix: str, length: int) -> None:
    drawn = {generate_card_number(prefix, length).reveal() for _ in range(200)}
    assert len(drawn) > 190  # random, not a sequence
    for digits in drawn:
        assert digits.startswith(prefix)
        assert len(digits) == length
        assert CardNumber.parse(digits).reveal() == digits  # Luhn-valid


@pytest.mark.parametrize(("prefix", "length"), [("621661", 12), ("621661", 20), ("6216610", 7)])
def test_generate_card_number_refuses_bad_lengths(prefix: str, length: int) -> None:
    with pytest.raises(ValueError, match="bad length"):
        generate_card_number(prefix, length)


# -- the key ring -------------------------------------------------------------------------------
def test_encrypt_decrypt_and_rotation() -> None:
    one = KeyRing.generate()
    sealed_id, sealed = one.encrypt(BOC_DEBIT.encode(), context=b"card-1")
    assert sealed_id == 1
    assert BOC_DEBIT.encode() not in sealed
    assert one.decrypt(sealed_id, sealed, context=b"card-1") == BOC_DEBIT.encode()
    # Another nonce every time: the same number never gives the same ciphertext.
    assert one.encrypt(BOC_DEBIT.encode(), context=b"card-1")[1] != sealed
    # Rotation: key 2 becomes active; key 1 stays in the ring for what it sealed.
    two = KeyRing({**one.vault_keys, 2: os.urandom(32)}, 2, one.hmac_root)
    new_id, new = two.encrypt(BOC_DEBIT.encode(), context=b"card-1")
    assert new_id == 2
    assert two.decrypt(sealed_id, sealed, context=b"card-1") == BOC_DEBIT.encode()
    assert two.decrypt(new_id, new, context=b"card-1") == BOC_DEBIT.encode()
    # The HMAC keys do not change with the vault key: fingerprints keep finding the card.
    assert two.fingerprint("pan", BOC_DEBIT) == one.fingerprint("pan", BOC_DEBIT)
    # Key 1 retired too early: its ciphertexts are unreadable, and the error says why.
    retired = KeyRing({2: two.vault_keys[2]}, 2, one.hmac_root)
    with pytest.raises(KeyConfigError, match="not in the ring"):
        retired.decrypt(sealed_id, sealed, context=b"card-1")


def test_a_moved_or_altered_ciphertext_does_not_decrypt() -> None:
    ring = KeyRing.generate()
    key_id, sealed = ring.encrypt(BOC_DEBIT.encode(), context=b"card-1")
    with pytest.raises(InvalidTag):
        ring.decrypt(key_id, sealed, context=b"card-2")  # copied onto another card's row
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(InvalidTag):
        ring.decrypt(key_id, flipped, context=b"card-1")
    with pytest.raises(InvalidTag):
        KeyRing.generate().decrypt(key_id, sealed, context=b"card-1")  # another deployment


def test_fingerprints_are_keyed_and_separated_by_kind() -> None:
    ring = KeyRing.generate()
    assert ring.fingerprint("pan", BOC_DEBIT) == ring.fingerprint("pan", BOC_DEBIT)
    assert ring.fingerprint("pan", BOC_DEBIT) != ring.fingerprint("id-number", BOC_DEBIT)
    assert ring.fingerprint("pan", BOC_DEBIT) != KeyRing.generate().fingerprint("pan", BOC_DEBIT)
    assert len({ring.cvv_key, ring.session_key, ring.payment_code_master}) == 3


@pytest.mark.parametrize(
    ("keys", "active", "root", "message"),
    [
        ({1: b"k" * 32}, 2, b"r" * 32, "active vault key 2"),
        ({1: b"k" * 31}, 1, b"r" * 32, "32 bytes"),
        ({0: b"k" * 32}, 0, b"r" * 32, "id 1–255"),
        ({1: b"k" * 32}, 1, b"r" * 16, "HMAC root"),
    ],
    ids=["active_missing", "short_key", "key_id_zero", "short_root"],
)
def test_bad_key_rings_are_refused(
    keys: dict[int, bytes], active: int, root: bytes, message: str
) -> None:
    with pytest.raises(KeyConfigError, match=message):
        KeyRing(keys, active, root)


def test_the_key_ring_never_prints_its_keys() -> None:
    ring = KeyRing.generate()
    assert ring.vault_keys[1].hex() not in repr(ring)
    assert ring.hmac_root.hex() not in repr(ring)


def test_load_creates_keys_json_once_with_mode_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLASHPAY_VAULT_KEYS", raising=False)
    first = KeyRing.load(tmp_path)
    path = tmp_path / KEYS_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.read_text()
    again = KeyRing.load(tmp_path)
    assert path.read_text() == written  # not rewritten
    assert (again.vault_keys, again.active_key_id, again.hmac_root) == (
        first.vault_keys,
        first.active_key_id,
        first.hmac_root,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEYS_FILE_NAME]  # no temporaries left
    key_id, sealed = first.encrypt(b"x", context=b"c")
    assert again.decrypt(key_id, sealed, context=b"c") == b"x"


def test_load_refuses_a_broken_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLASHPAY_VAULT_KEYS", raising=False)
    (tmp_path / KEYS_FILE_NAME).write_text(json.dumps({"vault_keys": {"1": "zz"}}))
    with pytest.raises(KeyConfigError, match="not a flashpay key file"):
        KeyRing.load(tmp_path)


def test_load_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASHPAY_VAULT_KEYS", f"1:{'11' * 32}, 2:{'22' * 32}")
    monkeypatch.setenv("FLASHPAY_VAULT_ACTIVE_KEY", "1")
    monkeypatch.setenv("FLASHPAY_HMAC_KEY", "33" * 32)
    ring = KeyRing.load(tmp_path)
    assert (sorted(ring.vault_keys), ring.active_key_id) == ([1, 2], 1)
    assert not (tmp_path / KEYS_FILE_NAME).exists()  # the environment wins; no file is made
    monkeypatch.delenv("FLASHPAY_VAULT_ACTIVE_KEY")
    assert KeyRing.load(tmp_path).active_key_id == 2  # the highest id by default
    monkeypatch.setenv("FLASHPAY_HMAC_KEY", "not hex")
    with pytest.raises(KeyConfigError, match="FLASHPAY_VAULT_KEYS"):
        KeyRing.load(tmp_path)


def test_concurrent_loads_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads and processes racing to create keys.json all end with the same keys."""
    monkeypatch.delenv("FLASHPAY_VAULT_KEYS", raising=False)
    data = tmp_path / "data"
    script = (
        "import sys; from pathlib import Path; from flashpay.keys import KeyRing; "
        "print(KeyRing.load(Path(sys.argv[1])).hmac_root.hex())"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FLASHPAY_")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(data)],
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for _ in range(4)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        in_threads = list(pool.map(lambda _: KeyRing.load(data).hmac_root.hex(), range(16)))
    in_processes = [p.communicate(timeout=60)[0].strip() for p in processes]
    assert all(p.returncode == 0 for p in processes)
    assert len(set(in_threads + in_processes)) == 1
    assert sorted(p.name for p in data.iterdir()) == [KEYS_FILE_NAME]
