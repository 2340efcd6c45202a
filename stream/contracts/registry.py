"""The contract registry: schema id -> its validator, the field a rejection refers to, its domain.

Every message contract the system reads is registered once, by the domain that owns it, in that
domain's own contracts module::

    from stream.contracts.registry import register

    register("taxfree-document/1", validate_document_body, ref_field="document_id",
             domain="taxfree", schema_file="taxfree-document-1.json")

`validate` (stream/contracts/validate.py) dispatches through this table, `ref_of` reads the
reference field from it, and tests/test_contracts.py checks that every registered `schema_file`
exists in schemas/ and that its validator agrees with it (jsonschema as the oracle).

A validator takes a document whose ``schema`` field already names its contract and returns None
when it is valid, else ``(reason, detail)`` with a code of stream/contracts/reasons.py. Validators
built from the field checks of stream/contracts/validate.py normalise integral floats of integer
fields to int (``1.0`` -> ``1``) in the document they accept, the one rule for integer fields.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

Problem = tuple[str, str]
Validator = Callable[[dict], "Problem | None"]


@dataclass(frozen=True)
class Contract:
    schema: str            # the `schema` value, e.g. "order/1"
    validate: Validator    # checks a document that carries this schema id
    ref_field: str | None  # the id a rejection of such a document refers to
    domain: str            # the package that owns it: "warehouse", "taxfree", ...
    schema_file: str | None = None  # its JSON Schema in schemas/ (the oracle of the tests)


_CONTRACTS: dict[str, Contract] = {}


def register(schema: str, validate: Validator, *, ref_field: str | None, domain: str,
             schema_file: str | None = None) -> Contract:
    """Add a contract. Registering the same id twice with a different validator is an error
    (two domains would answer for one contract); registering the same one again is harmless."""
    contract = Contract(schema, validate, ref_field, domain, schema_file)
    known = _CONTRACTS.get(schema)
    if known is not None and known != contract:
        raise ValueError(f"contract {schema!r} is already registered by {known.domain}")
    _CONTRACTS[schema] = contract
    return contract


def get(schema: object) -> Contract | None:
    """The registered contract of a schema id (None for anything else, including non-strings)."""
    return _CONTRACTS.get(schema) if isinstance(schema, str) else None


def contracts(domain: str | None = None) -> tuple[Contract, ...]:
    """Every registered contract (of one domain), in registration order."""
    return tuple(c for c in _CONTRACTS.values() if domain is None or c.domain == domain)


def ref_fields() -> tuple[str, ...]:
    """The distinct reference fields, in registration order (for documents of no known schema)."""
    return tuple(dict.fromkeys(c.ref_field for c in _CONTRACTS.values() if c.ref_field))
