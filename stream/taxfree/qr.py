"""The signed QR of a tax-free document: a JWS (RFC 7515, compact) signed with EdDSA / Ed25519
(RFC 8037) by the trading entity, over `{"document_id", "bin", "issued_at", "vat", "receipts"}`.

Libraries: PyJWT (with `cryptography` underneath) signs the QR, parses the JWK / JWKS (RFC 7517)
and serves the API's access tokens (stream/taxfree/access.py). Verification, on the hot path of
every document, is PyNaCl's (libsodium) Ed25519 over the JWS signing input directly: PyJWT's
decoder checks each base64url character in Python (about 200 us per token here, more than the
signature), and libsodium verifies twice as fast as OpenSSL's Ed25519 on this machine (22.8k vs
11.2k per second); a JWS with one fixed algorithm needs no more than this. The header must say `alg: EdDSA` and
carry no `crit`; nothing in it chooses the algorithm or the key's type (`none`, HS256 keyed with a
public key, ... fail). tests/test_taxfree_qr.py holds this verifier equal to PyJWT's decode.
A trading entity's public keys are the JWKS entries whose `kid` is its BIN or starts with `BIN/`
(or that carry a `bin` member, RFC 7517 allows more members): a QR signed by another entity's key
does not verify for this one (a swapped QR).
"""
from __future__ import annotations

import binascii
import json
import os
import secrets
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from stream.money import parse_tiyn
from stream.taxfree.contracts import timestamp_ok, timestamp_of

ALGORITHM = "EdDSA"
_JWS = jwt.api_jws.PyJWS(algorithms=[ALGORITHM])


class KeyError_(ValueError):
    """A JWKS or key file cannot be used."""


def payload_of(doc: dict, vat: str) -> dict:
    """What the QR of `doc` must carry (`vat`: the sum of its lines' VAT as a KZT string)."""
    return {"document_id": doc["document_id"], "bin": doc["trading_entity"]["bin"],
            "issued_at": doc["issued_at"], "vat": vat, "receipts": [r["number"] for r in doc["receipts"]]}


def payload_matches(payload: dict | None, doc: dict, vat: str) -> bool:
    """Whether a verified QR payload describes `doc`: the same document id, BIN, issue time (the same
    instant), VAT amount and receipt numbers. Other members a signer adds are not compared."""
    if not isinstance(payload, dict):
        return False
    issued_at, amount, receipts = payload.get("issued_at"), payload.get("vat"), payload.get("receipts")
    try:
        return (payload.get("document_id") == doc["document_id"] and payload.get("bin") == doc["trading_entity"]["bin"]
                and isinstance(issued_at, str)
                # the same text is the same instant (the document's passed its contract); else compare instants
                and (issued_at == doc["issued_at"] or (timestamp_ok(issued_at)
                                                       and timestamp_of(issued_at) == timestamp_of(doc["issued_at"])))
                and isinstance(amount, str) and (amount == vat or parse_tiyn(amount) == parse_tiyn(vat))
                and isinstance(receipts, list) and receipts == [r["number"] for r in doc["receipts"]])
    except (TypeError, ValueError):
        return False


def sign(payload: dict, private_key: Ed25519PrivateKey, kid: str) -> str:
    return _JWS.encode(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS), private_key, algorithm=ALGORITHM,
                       headers={"kid": kid, "typ": "taxfree-qr+jws"})


class KeySet:
    """Trading entities' public keys (a JWKS), by BIN."""

    def __init__(self, jwks: dict | None = None):
        self.by_bin: dict[str, dict[str, bytes]] = {}  # BIN -> kid -> raw Ed25519 public key (32 bytes)
        self._headers: dict[str, object] = {}  # JWS header segment -> its kid, None, or _BAD
        self._ahead: dict | None = None  # (token, BIN) -> (Ahead, index, payload segment), within `ahead`
        if not jwks:
            return
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(keys, list):
            raise KeyError_("JWKS: expected an object with a `keys` array")
        for i, entry in enumerate(keys):
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                raise KeyError_(f"JWKS keys[{i}]: a key needs a string kid (the trading entity's BIN)")
            if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
                raise KeyError_(f"JWKS keys[{i}]: only Ed25519 (kty OKP, crv Ed25519) keys sign tax-free QR codes")
            if entry.get("alg", ALGORITHM) != ALGORITHM or "d" in entry:
                raise KeyError_(f"JWKS keys[{i}]: must be a public EdDSA key (no `d`, alg EdDSA)")
            try:
                public = jwt.PyJWK(entry, algorithm=ALGORITHM).key
            except jwt.PyJWKError as exc:
                raise KeyError_(f"JWKS keys[{i}]: {exc}") from None
            key = bytes(VerifyKey(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)))
            bin_ = entry.get("bin", entry["kid"].split("/", 1)[0])
            if not (isinstance(bin_, str) and len(bin_) == 12 and bin_.isdigit()):
                raise KeyError_(f"JWKS keys[{i}]: say whose key it is: a kid that is the trading entity's BIN "
                                "(or BIN/anything), or a `bin` member")
            self.by_bin.setdefault(bin_, {})[entry["kid"]] = key

    @classmethod
    def load(cls, path: str | Path | None) -> "KeySet":
        if path is None or not Path(path).exists():
            return cls()
        try:
            return cls(json.loads(Path(path).read_text(encoding="utf-8")))
        except ValueError as exc:
            if isinstance(exc, KeyError_):
                raise
            raise KeyError_(f"JWKS {path}: not JSON: {exc}") from None

    def verify(self, token: str, bin_: str) -> dict | None:
        """The payload of `token` when it verifies with one of `bin_`'s keys, else None."""
        if self._ahead:
            job = self._ahead.get((token, bin_))
            if job is not None:
                batch, index, payload = job
                return _payload(payload) if batch.verified(index) else None
        prepared = self._prepare(token, bin_)
        if prepared is None:
            return None
        candidates, signed, payload = prepared
        for key in candidates:
            try:
                crypto_sign_open(signed, key)
            except (BadSignatureError, ValueError):
                continue
            return _payload(payload)
        return None

    @contextmanager
    def ahead(self, pairs):
        """Within it, the (token, BIN) ``pairs`` (a page's QR codes, in the order they are decided) are
        checked ahead on a helper thread (signatures.py); `verify` gives the same answers."""
        jobs: dict[tuple[str, str], tuple[int, str]] = {}  # (token, BIN) -> (its index, payload segment)
        signed, keys = [], []
        for pair in pairs:
            if type(pair[0]) is not str or type(pair[1]) is not str or pair in jobs:
                continue
            prepared = self._prepare(*pair)
            if prepared is None or len(prepared[0]) != 1:
                continue  # fails before any signature, or several keys to try: `verify` alone
            jobs[pair] = (len(signed), prepared[2])
            signed.append(prepared[1])
            keys.append(prepared[0][0])
        if len(signed) < 2:
            yield
            return
        from stream.taxfree.signatures import Ahead

        batch = Ahead(signed, keys)
        self._ahead = {pair: (batch, index, payload) for pair, (index, payload) in jobs.items()}
        try:
            yield
        finally:
            self._ahead = None
            batch.close()

    def _prepare(self, token: str, bin_: str):
        """(the keys to try, libsodium's signed message, the payload segment) of `token` for `bin_`, or
        None when it cannot verify whatever the signature (no key, not a JWS, a header not accepted)."""
        keys = self.by_bin.get(bin_)
        if not keys or not isinstance(token, str):
            return None
        parts = token.split(".")
        if len(parts) != 3:
            return None
        kid = self._headers.get(parts[0], _MISSING)
        if kid is _MISSING:
            kid = self._header_kid(parts[0])
        if kid is _BAD:
            return None
        try:
            signature = _b64url(parts[2])
            # libsodium's signed message: signature || signing input (header.payload, ASCII)
            signed = signature + token[:len(parts[0]) + 1 + len(parts[1])].encode("ascii")
        except ValueError:  # UnicodeEncodeError too
            return None
        if len(signature) != 64:
            return None
        candidates = (keys[kid],) if isinstance(kid, str) and kid in keys else tuple(keys.values())
        return candidates, signed, parts[1]

    def _header_kid(self, segment: str):
        """The `kid` of a JWS header segment that is acceptable (alg EdDSA, no crit), None when it names
        none, `_BAD` when the header is not acceptable. Remembered per segment: an entity's QR codes share
        one header, so each is decoded once (the memo is bounded)."""
        try:
            header = orjson.loads(_b64url(segment))
        except (ValueError, orjson.JSONDecodeError):
            header = None
        if not isinstance(header, dict) or header.get("alg") != ALGORITHM or "crit" in header:
            kid = _BAD
        else:
            kid = header.get("kid")
            kid = kid if isinstance(kid, str) else None
        if len(self._headers) < 4096:
            self._headers[segment] = kid
        return kid


def _payload(segment: str) -> dict | None:
    """The verified payload segment's JSON object (None: not base64url JSON, or not an object)."""
    try:
        payload = orjson.loads(_b64url(segment))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


_MISSING, _BAD = object(), object()
_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64url(segment: str) -> bytes:
    """Strict base64url without padding (RFC 7515 section 2): anything else is a ValueError."""
    if "=" in segment or "+" in segment or "/" in segment:
        raise ValueError("not base64url")
    try:
        return binascii.a2b_base64((segment + "=" * (-len(segment) % 4)).encode("ascii").translate(_URLSAFE),
                                   strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not base64url") from None


def new_key_pair(bin_: str, key_dir: Path, jwks_path: Path) -> tuple[Path, str]:
    """A fresh Ed25519 key for trading entity `bin_`: the private key as PEM in `key_dir` (mode 0600)
    and its public JWK appended to `jwks_path`. Returns (private key file, kid)."""
    if not (len(bin_) == 12 and bin_.isdigit()):
        raise KeyError_("the trading entity's BIN is 12 digits")
    private = Ed25519PrivateKey.generate()
    kid = f"{bin_}/{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(4)}"
    jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
    key_dir.mkdir(parents=True, exist_ok=True)
    key_file = key_dir / f"{kid.replace('/', '-')}.pem"
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    jwks = {"keys": []}
    if jwks_path.exists():
        jwks = json.loads(jwks_path.read_text(encoding="utf-8"))
        KeySet(jwks)  # refuse to append to a broken file
    jwks["keys"].append(jwk)
    jwks_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = jwks_path.with_suffix(jwks_path.suffix + ".tmp")
    tmp.write_text(json.dumps(jwks, indent=2) + "\n", encoding="utf-8")
    tmp.replace(jwks_path)
    return key_file, kid


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyError_(f"{path}: not an Ed25519 private key")
    return key


def kid_of(path: str | Path) -> str:
    """The kid of a key file written by `new_key_pair` (its name: BIN-date-suffix.pem)."""
    bin_, _, rest = Path(path).stem.partition("-")
    return f"{bin_}/{rest}"
