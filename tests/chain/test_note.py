"""Signed notes: Go's golang.org/x/mod/sumdb/note test vectors reproduce; cosignatures."""

from __future__ import annotations

import base64

import pytest

from flashpay.chain import note
from flashpay.chain.checkpoint import Checkpoint, CheckpointError, parse

# From golang.org/x/mod/sumdb/note/note_test.go.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_B64 = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
ENOCH_B64 = (
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
)
PETER_SIG = f"— PeterNeumann {PETER_B64}\n"
ENOCH_SIG = f"— EnochRoot {ENOCH_B64}\n"
PETER = note.Signature("PeterNeumann", 0xC74F20A3, PETER_B64)
ENOCH = note.Signature("EnochRoot", 0xAF0CFE78, ENOCH_B64)


def test_go_sign_vector_reproduces_byte_for_byte() -> None:
    assert note.sign(TEXT, PETER_SKEY) == f"{TEXT}\n{PETER_SIG}"


def test_signer_and_verifier_keys_of_the_vector() -> None:
    signer = note.parse_signer(PETER_SKEY)
    assert signer.key_hash == 0xC74F20A3
    assert signer.verifier().key_string() == PETER_VKEY
    verifier = note.parse_verifier(PETER_VKEY)
    assert verifier.key_hash == note.key_hash("PeterNeumann", b"\x01" + verifier.public_key)


def test_mangled_verifier_keys_are_rejected() -> None:
    b = PETER_VKEY
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                with pytest.raises(note.NoteError):
                    note.parse_verifier(b[i:j])
    for i in range(len(b)):
        with pytest.raises(note.NoteError):
            note.parse_verifier(b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :])
    # wrong key length and unknown algorithm, each with an adjusted key hash (Go's cases)
    for bad in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ):
        with pytest.raises(note.NoteError):
            note.parse_verifier(bad)


def test_mangled_signer_keys_are_rejected() -> None:
    b = PETER_SKEY
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                with pytest.raises(note.NoteError):
                    note.parse_signer(b[i:j])
    for i in range(len(b)):
        with pytest.raises(note.NoteError):
            note.parse_signer(b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :])


def test_generated_keys_sign_and_verify() -> None:
    skey, vkey = note.generate_key("EnochRoot")
    signed = note.sign("hi\n", skey)
    opened = note.verify(signed, [vkey])
    assert opened.text == "hi\n"
    assert [s.name for s in opened.sigs] == ["EnochRoot"]
    tampered = signed.replace("hi\n", "ho\n", 1)
    with pytest.raises(note.NoteError, match="invalid signature"):
        note.verify(tampered, [vkey])


def test_open_one_verified_one_unknown() -> None:
    opened = note.verify(f"{TEXT}\n{PETER_SIG}{ENOCH_SIG}", [PETER_VKEY])
    assert opened.text == TEXT
    assert opened.sigs == (PETER,)
    assert opened.unverified_sigs == (ENOCH,)


def test_open_both_verified() -> None:
    opened = note.verify(f"{TEXT}\n{PETER_SIG}{ENOCH_SIG}", [PETER_VKEY, ENOCH_VKEY])
    assert opened.sigs == (PETER, ENOCH)
    assert opened.unverified_sigs == ()


def test_open_no_known_key_is_unverified() -> None:
    with pytest.raises(note.UnverifiedNoteError, match="no verifiable signatures"):
        note.verify(f"{TEXT}\n{PETER_SIG}{ENOCH_SIG}", [])


def test_open_duplicated_verifier_is_ambiguous_only_when_used() -> None:
    with pytest.raises(note.NoteError, match="ambiguous key EnochRoot\\+af0cfe78"):
        note.verify(f"{TEXT}\n{ENOCH_SIG}", [ENOCH_VKEY, PETER_VKEY, ENOCH_VKEY])
    note.verify(f"{TEXT}\n{PETER_SIG}", [ENOCH_VKEY, PETER_VKEY, ENOCH_VKEY])


def test_open_too_many_signatures_is_malformed() -> None:
    with pytest.raises(note.NoteError, match="malformed"):
        note.verify(f"{TEXT}\n{PETER_SIG * 101}", [PETER_VKEY])


def test_open_invalid_signature_rejects_the_note() -> None:
    bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(note.NoteError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        note.verify(f"{TEXT}\n{bad}", [PETER_VKEY])


def test_open_duplicated_signatures_are_deduplicated() -> None:
    enoch_abcd = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    msg = f"{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{enoch_abcd}"
    opened = note.verify(msg, [PETER_VKEY])
    assert opened.sigs == (PETER,)
    assert [s.name for s in opened.unverified_sigs] == ["EnochRoot", "EnochRoot"]


@pytest.mark.parametrize(
    "message",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + f"— Bad Name {PETER_B64}",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    ],
)
def test_open_malformed_notes(message: str) -> None:
    with pytest.raises(note.NoteError, match="malformed"):
        note.verify(message, [PETER_VKEY])


def test_cosignature_v1_key_id_message_and_timestamp() -> None:
    skey, vkey = note.generate_key("witness.bank-a.example", note.COSIGNATURE_V1)
    verifier = note.parse_verifier(vkey)
    # key ID per c2sp.org/tlog-cosignature: SHA-256(name || "\n" || 0x04 || public key)[:4]
    assert verifier.key_hash == note.key_hash(
        "witness.bank-a.example", b"\x04" + verifier.public_key
    )
    body = Checkpoint("flashpay.example/audit-log", 8, bytes(32)).body()
    line = note.signature_line(body, skey, timestamp=1679315147)
    opened = note.verify(body + "\n" + line, [vkey])
    assert opened.sigs[0].timestamp == 1679315147
    # the signature covers "cosignature/v1\ntime <t>\n" + body: a changed timestamp breaks it
    raw = base64.b64decode(opened.sigs[0].base64)
    assert len(raw) == 4 + 8 + 64
    forged = bytearray(raw)
    forged[11] ^= 1
    forged_line = f"— witness.bank-a.example {base64.b64encode(bytes(forged)).decode()}\n"
    with pytest.raises(note.NoteError, match="invalid signature"):
        note.verify(body + "\n" + forged_line, [vkey])
    with pytest.raises(note.NoteError):
        note.signature_line(body, skey)  # a cosignature needs a timestamp


def test_checkpoint_body_round_trip_and_errors() -> None:
    c = Checkpoint("example.com/behind-the-sofa", 20852163, bytes(range(32)))
    assert c.body().startswith("example.com/behind-the-sofa\n20852163\n")
    assert parse(c.body()) == c
    for bad in ["a\n1\n", "a\n01\nAAAA\n", "a\n1\nAAAA\n", "a\n1\n" + "A" * 44, "a\n-1\nx\n"]:
        with pytest.raises(CheckpointError):
            parse(bad)
