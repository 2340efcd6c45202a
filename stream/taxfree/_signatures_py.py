"""Pure-Python twin of ext/signatures.pyx (same results): see that file."""
from __future__ import annotations

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

SIGNATURE_BYTES = 64
KEY_BYTES = 32


def _checked(signed: list, keys: list) -> None:
    for message, key in zip(signed, keys):
        if type(message) is not bytes or type(key) is not bytes:
            raise TypeError("signed messages and keys are bytes")
        if len(key) != KEY_BYTES:
            raise ValueError("an Ed25519 public key is 32 bytes")


def _verifies(message: bytes, key: bytes) -> bool:
    if len(message) < SIGNATURE_BYTES:  # not a signed message (libsodium refuses it too)
        return False
    try:
        crypto_sign_open(message, key)
    except (BadSignatureError, ValueError):
        return False
    return True


def open_each(signed: list, keys: list, address: int, state: bytearray) -> None:
    """Check every message whose ``state`` byte is 0 and set it to 1 (verifies with ``keys[i]``) or 2
    (does not), in order; ``state`` has one byte more than there are messages: once it is not 0, the
    loop stops. (``address`` is the compiled kernel's libsodium crypto_sign_open; the twin calls it
    through PyNaCl, holding the GIL between checks.)"""
    n = len(signed)
    if len(keys) != n or len(state) != n + 1:
        raise ValueError("one key and one state byte per signed message, and the stop byte")
    if address == 0:
        raise ValueError("no crypto_sign_open")
    _checked(signed, keys)
    for i in range(n):
        if state[n] != 0:
            break
        if state[i] != 0:
            continue
        state[i] = 1 if _verifies(signed[i], keys[i]) else 2


def open_all(signed: list, keys: list, address: int) -> bytes:
    """One byte per message: 1 when ``signed[i]`` (signature || message, libsodium's signed form)
    verifies with the Ed25519 public key ``keys[i]`` (32 bytes), else 0."""
    if len(keys) != len(signed):
        raise ValueError("one key per signed message")
    state = bytearray(len(signed) + 1)
    open_each(signed, keys, address, state)
    return bytes(b & 1 for b in state[:len(signed)])
