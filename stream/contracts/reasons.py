"""Stable rejection reason codes of `rejection/1`.

Codes are part of the public contract: never rename one; add new ones at the end. README.md
("Rejection reasons") is generated from REASONS and a test keeps the two in step.
"""
from __future__ import annotations

# code -> what it means (shown to users)
REASONS: dict[str, str] = {
    "malformed_json": "the input is not valid JSON (or not UTF-8)",
    "not_an_object": "the document is not a JSON object",
    "unknown_schema": "the `schema` field is missing or names no contract this input accepts",
    "missing_field": "a required field is absent",
    "wrong_type": "a field has the wrong JSON type (e.g. money as a number instead of a string)",
    "invalid_number": "a decimal string is malformed, negative, too precise or absurdly large",
    "out_of_range": "a number is outside its allowed range (e.g. quantity zero or negative)",
    "invalid_code": "a code (country, currency, HS, BIN/IIN, identifier) has the wrong form",
    "invalid_date": "a timestamp or date is malformed or impossible (e.g. 2026-02-30)",
    "empty_lines": "the document has no lines",
    "too_many_items": "a page or a document has more items or lines than allowed",
    "unknown_flow": "`flow` is neither `parcel` nor `warehouse`",
    "unsupported_currency": "no exchange rate is known for this currency",
    "no_exchange_rate": "no exchange rate on or before the declaration date",
    "no_rule_set": "no rule set is in force on the declaration date",
    "no_tariff_rate": "no tariff row matches the line's HS code",
    "missing_volume": "the tariff charges per litre but the line gives no volume",
    "value_out_of_range": "an amount exceeds what the system accepts per line (10^13 KZT)",
    "unknown_sku": "the order names a SKU never received into the warehouse",
    "insufficient_stock": "not enough goods on hand within the hold time",
    "conflicting_duplicate": "an id seen before arrives again with different content",
    "invalid_text": "a text field (description, buyer name, category, marketplace) is empty or too long",
    "internal_error": "the system failed on this input (a defect, logged for the operators); send it again later",
}

# Each domain's input reasons, in its own block so domains are added without touching the others.
# The table stays one: REASONS below, in this order, is what rejection/1 and README.md list.

# -- feed hardening (the shared pipeline) --
RUNTIME_REASONS: dict[str, str] = {
}

# -- post-release control: audit cases and events (stream/audit) --
AUDIT_REASONS: dict[str, str] = {
}

# -- post-release control: risk scoring (stream/audit) --
RISK_REASONS: dict[str, str] = {
}

# -- tax-free VAT refunds (stream/taxfree) --
TAXFREE_REASONS: dict[str, str] = {
}

# -- local content, CT-KZ (stream/localcontent) --
LOCALCONTENT_REASONS: dict[str, str] = {
    "unknown_origin": "a material's origin is well formed but not an assigned ISO 3166-1 alpha-2 country code",
    "foreign_cost_exceeds_production_cost": "the foreign materials cost more than the whole production cost",
    "no_local_content_rules": "no local-content formula or VAT rate in the rules data covers `calculated_on`",
}

for _block in (RUNTIME_REASONS, AUDIT_REASONS, RISK_REASONS, TAXFREE_REASONS, LOCALCONTENT_REASONS):
    for _code, _meaning in _block.items():
        if _code in REASONS:
            raise RuntimeError(f"reason {_code!r} is defined twice")
        REASONS[_code] = _meaning


def rejection(ref: str | None, reason: str, detail: str) -> dict:
    """A `rejection/1` document."""
    if reason not in REASONS:
        raise ValueError(f"unknown rejection reason {reason!r}")
    return {"schema": "rejection/1", "ref": ref, "reason": reason, "detail": detail}
