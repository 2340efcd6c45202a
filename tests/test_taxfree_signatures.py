"""A page's QR checks on the helper thread (stream/taxfree/signatures.py, ext/signatures.pyx) give
the answers of checking each QR alone: the compiled batch equals its twin on valid, tampered, short
and other entities' signatures; `KeySet.ahead` equals `KeySet.verify`; a page decided with the
helper is byte for byte the page decided without it."""
from __future__ import annotations

import importlib
import threading

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream._backend import PURE_PYTHON
from stream.taxfree import _signatures_py as twin
from stream.taxfree import samples, signatures
from stream.taxfree.agents import handle_bytes
from stream.taxfree.decide import Decider, Ledger
from stream.taxfree.qr import KeySet
from stream.taxfree.rules import load

SELLER = samples.entity("123456789012")
OTHER = samples.entity("987654321098")
KEYS = samples.keyset(SELLER, OTHER)
PUBLIC = KEYS.by_bin[SELLER.bin][SELLER.kid]
OTHER_PUBLIC = KEYS.by_bin[OTHER.bin][OTHER.kid]

try:
    compiled = importlib.import_module("stream.taxfree._signatures")
except ImportError:  # the guard below fails for it
    compiled = None


def test_compiled_kernel_is_used_unless_pure_python_is_asked_for():
    if PURE_PYTHON:
        assert signatures.backend() == "python"
    else:
        assert compiled is not None, "stream.taxfree._signatures is missing: run `make build`"
        assert signatures.backend() == "compiled"


def signed_messages(count: int) -> list[bytes]:
    from nacl.signing import SigningKey

    key = SigningKey(SELLER.key.private_bytes_raw())
    return [bytes(key.sign(f"message {i}".encode() * (i % 7 + 1))) for i in range(count)]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_compiled_batch_equals_the_twin(data):
    if compiled is None:
        pytest.skip("no compiled module (the guard test fails for it)")
    messages = signed_messages(12)
    keys = [PUBLIC] * len(messages)
    for i in data.draw(st.lists(st.integers(0, len(messages) - 1), max_size=6)):
        kind = data.draw(st.sampled_from(["flip", "truncate", "other_key", "empty", "garbage"]))
        if kind == "flip" and messages[i]:
            at = data.draw(st.integers(0, len(messages[i]) - 1))
            messages[i] = messages[i][:at] + bytes([messages[i][at] ^ data.draw(st.integers(1, 255))]) + messages[i][at + 1:]
        elif kind == "truncate":
            messages[i] = messages[i][:data.draw(st.integers(0, 70))]
        elif kind == "other_key":
            keys[i] = OTHER_PUBLIC
        elif kind == "empty":
            messages[i] = b""
        else:
            messages[i] = data.draw(st.binary(max_size=120))
    address = signatures._ADDRESS
    expected = twin.open_all(messages, keys, address)
    assert compiled.open_all(messages, keys, address) == expected
    assert expected == bytes(1 if _alone(m, k) else 0 for m, k in zip(messages, keys))


def _alone(message: bytes, key: bytes) -> bool:
    from nacl.bindings import crypto_sign_open
    from nacl.exceptions import BadSignatureError

    try:
        crypto_sign_open(message, key)
    except (BadSignatureError, ValueError):
        return False
    return True


@pytest.mark.parametrize("kernel", [pytest.param(twin, id="twin"), pytest.param("compiled", id="compiled")])
def test_open_each_leaves_answered_entries_and_stops_at_the_stop_byte(kernel):
    kernel = compiled if kernel == "compiled" else kernel
    if kernel is None:
        pytest.skip("no compiled module (the guard test fails for it)")
    messages = signed_messages(6)
    keys = [PUBLIC] * 6
    state = bytearray([0, 2, 0, 0, 0, 0, 0])  # entry 1 answered already (wrongly, on purpose): kept
    kernel.open_each(messages, keys, signatures._ADDRESS, state)
    assert list(state) == [1, 2, 1, 1, 1, 1, 0]
    stopped = bytearray([0, 0, 0, 0, 0, 0, 1])
    kernel.open_each(messages, keys, signatures._ADDRESS, stopped)
    assert list(stopped) == [0] * 6 + [1]
    with pytest.raises(ValueError):
        kernel.open_each(messages, keys, signatures._ADDRESS, bytearray(6))
    with pytest.raises(ValueError):
        kernel.open_all(messages, [b"short"] * 6, signatures._ADDRESS)
    with pytest.raises(TypeError):
        kernel.open_all(["text"], [PUBLIC], signatures._ADDRESS)


def tokens() -> list[tuple[str, str]]:
    doc = samples.document("TF-S1", SELLER)
    token = doc["qr"]
    header, payload, signature = token.split(".")
    flipped = header + "." + payload + "." + signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    swapped = samples.document("TF-S2", SELLER, sign_with=OTHER)["qr"]  # signed by another entity
    plain = [(samples.document(f"TF-P{i}", SELLER)["qr"], SELLER.bin) for i in range(40)]
    return [(token, SELLER.bin), (flipped, SELLER.bin), (swapped, SELLER.bin), (token, OTHER.bin),
            ("a.b.c", SELLER.bin), (token, "000000000000"), *plain, (token, SELLER.bin)]


@pytest.mark.parametrize("threads", ["0", "1", "2"])
def test_ahead_answers_as_verify_alone(threads, monkeypatch):
    monkeypatch.setenv("CUSTOMS_TAXFREE_VERIFY_THREADS", threads)
    monkeypatch.setattr(signatures, "_pool", None)
    pairs = tokens()
    alone = [KEYS.verify(token, bin_) for token, bin_ in pairs]
    assert alone[0] is not None and alone[1] is None and alone[2] is None and alone[3] is None
    # one keyset with a key without its kid (several keys to try: checked alone, not ahead)
    several = KeySet({"keys": [dict(SELLER.jwk(), kid=SELLER.bin + "/a"), dict(OTHER.jwk(), kid=SELLER.bin + "/b")]})
    for keys in (KEYS, several):
        expected = [keys.verify(token, bin_) for token, bin_ in pairs]
        with keys.ahead(pairs + [(None, SELLER.bin), ("x", 5)]):  # not text: left to `verify`
            assert [keys.verify(token, bin_) for token, bin_ in pairs] == expected
        assert keys._ahead is None


def test_ahead_runs_on_a_helper_thread_when_compiled(monkeypatch):
    if compiled is None or PURE_PYTHON:
        pytest.skip("the helper runs the compiled batch only")
    monkeypatch.setenv("CUSTOMS_TAXFREE_VERIFY_THREADS", "1")
    monkeypatch.setattr(signatures, "_pool", None)
    seen = []
    run = signatures.Ahead._run

    def spy(self, started):
        seen.append(threading.current_thread().name)
        run(self, started)

    monkeypatch.setattr(signatures.Ahead, "_run", spy)
    pairs = tokens()
    with KEYS.ahead(pairs):
        [KEYS.verify(token, bin_) for token, bin_ in pairs]
    assert seen and seen[0].startswith("taxfree-signatures")


def page_of(docs: list[dict]) -> bytes:
    return orjson.dumps({"schema": "page/1", "items": docs})


def test_a_page_decided_with_the_helper_is_the_page_decided_without(monkeypatch):
    docs = [samples.document(f"TF-H{i:03d}", SELLER, passport=f"P{i:07d}") for i in range(60)]
    docs[7] = samples.document("TF-H007", SELLER, sign_with=OTHER)  # a swapped QR: qr_mismatch
    docs[9] = dict(docs[9], qr=docs[10]["qr"])  # another document's QR
    docs[11] = samples.document("TF-H011", SELLER, form="paper")
    page = page_of(docs)
    outcomes = []
    for threads in ("0", "1"):
        monkeypatch.setenv("CUSTOMS_TAXFREE_VERIFY_THREADS", threads)
        monkeypatch.setattr(signatures, "_pool", None)
        decider = Decider(load(), samples.keyset(SELLER, OTHER), b"k" * 32)
        outcome = handle_bytes(decider, Ledger(), "taxfree.documents", None, page)
        outcomes.append(orjson.dumps([outcome.body, outcome.decisions, outcome.rejections],
                                     option=orjson.OPT_SORT_KEYS))
    assert outcomes[0] == outcomes[1]
    decisions = {d["document_id"]: d for d in orjson.loads(outcomes[0])[1]}
    assert decisions["TF-H007"]["reasons"] == ["qr_mismatch"] and decisions["TF-H009"]["reasons"] == ["qr_mismatch"]
    assert decisions["TF-H008"]["decision"] == "pending" and decisions["TF-H011"]["decision"] == "pending"
