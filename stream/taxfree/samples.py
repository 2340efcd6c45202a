"""Sample tax-free inputs, signed for real: for the demo, the benchmark and the tests.

Trading entities get deterministic Ed25519 keys from a seed, so runs are reproducible; documents
carry correct line VAT at the rate in force and a QR the entity really signed.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from stream.money import format_tiyn, parse_tiyn
from stream.taxfree.decide import vat_in_price
from stream.taxfree.qr import ALGORITHM, KeySet, payload_of, sign


@dataclass(frozen=True)
class Entity:
    bin: str
    key: Ed25519PrivateKey
    kid: str
    name: str = "Sample Store LLP"
    address: str = "Almaty, Dostyk Ave 1"

    def jwk(self) -> dict:
        jwk = json.loads(OKPAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        return jwk


def entity(bin_: str, seed: str = "sample", **kwargs) -> Entity:
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"{seed}:{bin_}".encode()).digest())
    return Entity(bin_, key, f"{bin_}/sample", **kwargs)


def jwks(*entities: Entity) -> dict:
    return {"keys": [e.jwk() for e in entities]}


def keyset(*entities: Entity) -> KeySet:
    return KeySet(jwks(*entities))


def line(price: str, rate_pct: str = "16", description: str = "Leather handbag", qty: int = 1) -> dict:
    return {"description": description, "qty": qty, "price": price,
            "vat": format_tiyn(vat_in_price(parse_tiyn(price), Decimal(rate_pct)))}


def document(document_id: str, seller: Entity, *, issued_at: str = "2026-08-15T14:20:00+05:00",
             lines: list[dict] | None = None, receipts: list[dict] | None = None, country: str = "DE",
             passport: str = "C01X00T47", form: str = "electronic", sign_with: Entity | None = None) -> dict:
    """A valid taxfree-document/1 (electronic ones signed by `sign_with`, default the seller)."""
    doc = {
        "schema": "taxfree-document/1", "document_id": document_id, "form": form, "issued_at": issued_at,
        "trading_entity": {"bin": seller.bin, "name": seller.name, "address": seller.address},
        "receipts": receipts or [{"number": f"FMU-{document_id}", "issued_at": issued_at[:11] + "14:18:00" + issued_at[19:],
                                  "register_address": seller.address}],
        "lines": lines or [line("120000.00")],
        "buyer": {"passport": {"country": country, "number": passport, "issued_on": "2019-05-01"},
                  "name": "MUELLER ANNA", "card_token": "tok_4f9c8e21aa"},
    }
    if form == "electronic":
        doc["qr"] = qr_for(doc, sign_with or seller)
    return doc


def qr_for(doc: dict, signer: Entity) -> str:
    vat = format_tiyn(sum(parse_tiyn(x["vat"]) for x in doc["lines"]))
    return sign(payload_of(doc, vat), signer.key, signer.kid)


def confirmation(doc: dict, at: str = "2026-08-20T09:10:00+05:00", airport: str = "ALA",
                 outcome: str = "confirmed", official_id: str = "SRA-0042", scanned: str | None = "same") -> dict:
    c = {"schema": "taxfree-confirmation/1", "document_id": doc["document_id"], "at": at, "airport": airport,
         "official_id": official_id, "outcome": outcome}
    if doc["form"] == "electronic" and scanned is not None:
        c["qr_scanned"] = doc["qr"] if scanned == "same" else scanned
    return c


def cancellation(doc: dict, at: str = "2026-08-16T10:00:00+05:00", replaced_by: str | None = None) -> dict:
    return {"schema": "taxfree-cancellation/1", "document_id": doc["document_id"], "at": at,
            "replaced_by": replaced_by}
