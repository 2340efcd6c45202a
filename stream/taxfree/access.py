"""Who may see a tax-free document: JWT access tokens (RFC 7519, PyJWT) and the object-level rule.

The one accepted algorithm comes from configuration (CUSTOMS_TAXFREE_JWT_ALG: EdDSA by default,
ES256, RS256 or HS256), never from a token: every decode passes ``algorithms=[configured]``, so
`alg: none` and HS/RS confusion (an HMAC token "signed" with the public key) fail. `iss`, `aud`,
`exp`, `sub` and `role` are required and checked.

Keys: production points CUSTOMS_TAXFREE_JWT_PRIVATE_KEY (the issuer, `taxfree token`) and
CUSTOMS_TAXFREE_JWT_PUBLIC_KEY (the worker) at real PEM files (an HS256 secret file for both with
HS256). With neither set, a key is created on first use under CUSTOMS_DATA_DIR/taxfree/, so a
worker and `taxfree token` run from the same directory agree on it.

Object-level rule (DESIGN 8.2): a `buyer` sees the documents whose passport is its `sub`
(COUNTRY:NUMBER, compared by keyed hash: the ledger keeps no passport), a `trading_entity` those
of its BIN, an `official` (an authorized SRA official: the operator issues their tokens) and the
`operator` every document. Anyone else gets 404, exactly as for a document that does not exist.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from stream.settings import env
from stream.taxfree.pii import keyed_hash
from stream.taxfree.secrets_store import read_or_create, taxfree_dir

ROLES = ("buyer", "trading_entity", "official", "operator")
ALGORITHMS = ("EdDSA", "ES256", "RS256", "HS256")
DEFAULT_TTL_SECONDS = 900
MAX_TTL_SECONDS = 7 * 24 * 3600


class ConfigError(ValueError):
    """The token configuration cannot be used (the message says why)."""


class Unauthorized(Exception):
    """No valid token: the answer is 401."""


@dataclass(frozen=True)
class Claims:
    role: str
    subject: str


def _new_private_pem(alg: str) -> bytes:
    if alg == "HS256":
        return secrets.token_urlsafe(48).encode()
    key = {"EdDSA": ed25519.Ed25519PrivateKey.generate,
           "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
           "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)}[alg]()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class TokenConfig:
    def __init__(self, alg: str, issuer: str, audience: str, private_key: bytes | None, public_key: bytes | None):
        if alg not in ALGORITHMS:
            raise ConfigError(f"CUSTOMS_TAXFREE_JWT_ALG={alg!r}: use one of {', '.join(ALGORITHMS)} (never none)")
        if not issuer or not audience:
            raise ConfigError("the token issuer and audience must not be empty")
        self.alg, self.issuer, self.audience = alg, issuer, audience
        self._private = private_key
        if public_key is None and private_key is not None:
            public_key = self._public_of(private_key)
        if public_key is None:
            raise ConfigError("no key to verify tokens with")
        self._public = public_key

    def _public_of(self, private_pem: bytes) -> bytes:
        if self.alg == "HS256":
            secret = private_pem.strip()
            if len(secret) < 32:
                raise ConfigError("the HS256 secret must be at least 32 bytes")
            return secret
        key = serialization.load_pem_private_key(private_pem, password=None)
        expected = {"EdDSA": ed25519.Ed25519PrivateKey, "ES256": ec.EllipticCurvePrivateKey,
                    "RS256": rsa.RSAPrivateKey}[self.alg]
        if not isinstance(key, expected):
            raise ConfigError(f"the private key is not a {self.alg} key")
        return key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)

    @classmethod
    def from_env(cls, issuing: bool = False) -> "TokenConfig":
        """The configured tokens; the default key file is created on first use (issuer or worker)."""
        alg = env("CUSTOMS_TAXFREE_JWT_ALG")
        private_path, public_path = env("CUSTOMS_TAXFREE_JWT_PRIVATE_KEY"), env("CUSTOMS_TAXFREE_JWT_PUBLIC_KEY")
        try:
            if private_path:
                private = Path(private_path).read_bytes()
            elif public_path and not issuing:
                private = None
            else:
                if alg not in ALGORITHMS:
                    raise ConfigError(f"CUSTOMS_TAXFREE_JWT_ALG={alg!r}: use one of {', '.join(ALGORITHMS)}")
                private = read_or_create(taxfree_dir() / f"jwt-{alg.lower()}.key", lambda: _new_private_pem(alg))
            public = Path(public_path).read_bytes() if public_path else None
        except OSError as exc:
            raise ConfigError(f"cannot read a token key file: {exc}") from None
        if issuing and private is None:
            raise ConfigError("set CUSTOMS_TAXFREE_JWT_PRIVATE_KEY to issue tokens")
        if alg == "HS256" and public is not None:
            public = public.strip()
        return cls(alg, env("CUSTOMS_TAXFREE_JWT_ISSUER"), env("CUSTOMS_TAXFREE_JWT_AUDIENCE"), private, public)

    def issue(self, role: str, subject: str, ttl: int = DEFAULT_TTL_SECONDS, now: float | None = None) -> str:
        if role not in ROLES:
            raise ConfigError(f"role {role!r}: use one of {', '.join(ROLES)}")
        if not subject or len(subject) > 200:
            raise ConfigError("the subject must be 1 to 200 characters")
        if not 1 <= ttl <= MAX_TTL_SECONDS:
            raise ConfigError(f"the ttl must be 1 to {MAX_TTL_SECONDS} seconds")
        if self._private is None:
            raise ConfigError("no private key to issue tokens with")
        key = self._private.strip() if self.alg == "HS256" else self._private
        issued = int(time.time() if now is None else now)
        return jwt.encode({"iss": self.issuer, "aud": self.audience, "sub": subject, "role": role,
                           "iat": issued, "exp": issued + ttl, "jti": secrets.token_hex(8)}, key, algorithm=self.alg)

    def verify(self, token: str) -> Claims:
        try:
            claims = jwt.decode(token, self._public, algorithms=[self.alg], audience=self.audience,
                                issuer=self.issuer, options={"require": ["exp", "iss", "aud", "sub"]})
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise Unauthorized(type(exc).__name__) from None
        role, subject = claims.get("role"), claims.get("sub")
        if role not in ROLES or not isinstance(subject, str) or not subject:
            raise Unauthorized("role or sub")
        return Claims(role, subject)


def bearer(header: str | None) -> str:
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("no bearer token")
    token = header[7:].strip()
    if not token or len(token) > 8192:
        raise Unauthorized("no bearer token")
    return token


def may_see(claims: Claims, record: dict, pii_key: bytes) -> bool:
    if claims.role in ("operator", "official"):
        return True
    if claims.role == "trading_entity":
        return claims.subject == record["bin"]
    if claims.role == "buyer":
        return secrets.compare_digest(keyed_hash(claims.subject, pii_key), record["buyer_ref"])
    return False


def view(record: dict) -> dict:
    """What the API shows of a document: status and decision, passport and card masked."""
    decision = {k: v for k, v in record["decision"].items() if k != "buyer_ref"}
    return {
        "document_id": decision["document_id"], "form": record["form"], "issued_at": record["issued_at"],
        "trading_entity_bin": record["bin"], "status": decision["decision"],
        "confirmed": record["confirmation"] is not None, "cancelled": record["cancellation"] is not None,
        "buyer": {"passport": dict(record["passport"]), "card": record["card"]},
        "decision": decision,
    }


def answer(authorization: str | None, document_id: str, lookup, tokens: TokenConfig,
           pii_key: bytes) -> tuple[int, dict]:
    """(HTTP status, JSON body) of GET /v1/taxfree/documents/{document_id}."""
    try:
        claims = tokens.verify(bearer(authorization))
    except Unauthorized:
        return 401, {"error": "unauthorized", "detail": "a valid bearer token is required"}
    record = lookup(document_id) if 0 < len(document_id) <= 128 else None
    if record is None or not may_see(claims, record, pii_key):
        return 404, {"error": "not_found", "detail": "no such document"}
    return 200, view(record)
