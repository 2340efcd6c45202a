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
    "duplicate_key": "a JSON object names the same key twice (readers disagree on which value wins)",
}

# Each domain's input reasons, in its own block so domains are added without touching the others.
# The table stays one: REASONS below, in this order, is what rejection/1 and README.md list.

# -- feed hardening (the shared pipeline) --
RUNTIME_REASONS: dict[str, str] = {
    "too_large": "the message is larger than the page limit (CUSTOMS_PAGE_BYTES); refused before it was read",
    "wrong_key": "the message key is not the warehouse_id its document names (or is missing): it would split a warehouse's stock across partitions",
}

# -- post-release control: audit cases and events (stream/audit) --
AUDIT_REASONS: dict[str, str] = {
    "unknown_event_kind": "an audit event's `kind` is none of opened, notification_delivered, paid, explanation_received, explanation_accepted, explanation_rejected",
    "unknown_case": "the audit event names a case that was never opened",
    "case_not_notified": "a payment or an explanation for a case whose notification was not delivered",
    "already_notified": "the case's notification was delivered already (a second delivery, or opening a notified case again)",
    "not_disputed": "a decision on an explanation that the case never received",
    "case_closed": "the case is decided (complied, explanation accepted or unfulfilled) and takes no more events",
    "deadline_passed": "the event is dated after the deadline it had to meet (comply_by for payments and explanations)",
    "date_out_of_order": "the event is dated before an earlier event of its case",
    "date_in_future": "the event is dated after today in Kazakhstan (UTC+5)",
    "overpayment": "a payment larger than the additional accruals still outstanding",
    "outside_calendar": "a deadline falls in a year the working-day calendar does not cover (add that year's decree on days off to the calendar file)",
    "declaration_mismatch": "the case is opened again for another declaration",
    "no_accruals": "a notification delivered for a case with no additional accruals",
    "wrong_partition_key": "the message key is not the event's case_id (all messages of a case share its key and partition)",
    "too_many_events": "the case already holds the most events one case may take",
    "already_explained": "the case has received its explanation already",
}

# -- post-release control: risk scoring (stream/audit) --
RISK_REASONS: dict[str, str] = {
    "no_risk_profile": "no risk profile is in force on the declaration date (risk scoring)",
    "duplicate_declaration": "the same declaration was scored before (a repeat): it is not scored twice",
}

# -- tax-free VAT refunds (stream/taxfree) --
TAXFREE_REASONS: dict[str, str] = {
    "vat_mismatch": "a tax-free line's VAT is not its price x r / (1 + r) at the VAT rate in force, rounded half up",
    "unknown_document": "a confirmation or cancellation names a tax-free document never received",
    "already_confirmed": "the tax-free document already has an export confirmation (or refusal) from the airport",
    "already_refunded": "the tax-free document was already refunded; it cannot be cancelled or decided again",
    "already_cancelled": "the tax-free document was already cancelled",
    "dates_out_of_order": "a date contradicts another (receipt after its document, confirmation or cancellation before issue)",
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
