"""Tax-free decisions: DESIGN 8.2's worked figures, every refusal reason, every input rejection, the
double-refund guards, redelivery, crash replay (bodies replayed on an empty ledger), the rules data
and `customs-stream taxfree decide`."""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from stream.cli import main
from stream.contracts.reasons import REASONS
from stream.taxfree import rules as rules_module
from stream.taxfree import samples
from stream.taxfree.agents import CANCELLATIONS, CONFIRMATIONS, DOCUMENTS, TaxfreeDomain, handle_bytes
from stream.taxfree.contracts import check
from stream.taxfree.decide import Decider, Ledger, vat_in_price
from stream.taxfree.offline import decide_lines
from stream.taxfree.rules import RulesError, add_months, end_of_validity

SELLER = samples.entity("123456789012")
OTHER = samples.entity("987654321098", address="Astana, Mangilik El 5")
RULES = rules_module.load()
DECIDER = Decider(RULES, samples.keyset(SELLER, OTHER), b"k" * 32)
TOPIC = {"taxfree-document/1": DOCUMENTS, "taxfree-confirmation/1": CONFIRMATIONS,
         "taxfree-cancellation/1": CANCELLATIONS}


class Run:
    """Feeds inputs one by one as the runtime does (handle, then apply the body) and keeps every body."""

    def __init__(self, decider=DECIDER):
        self.decider = decider
        self.ledger = Ledger()
        self.bodies, self.decisions, self.rejections = [], [], []

    def feed(self, *docs):
        for doc in docs:
            raw = orjson.dumps(doc) if isinstance(doc, dict) else doc
            topic = TOPIC.get(doc.get("schema")) if isinstance(doc, dict) else DOCUMENTS
            outcome = handle_bytes(self.decider, self.ledger, topic, None, raw)
            self._take(outcome)
        return self

    def lapse(self, today):
        self._take(self.decider.lapse(self.ledger, today))
        return self

    def end(self, now=None):
        """The input is over (offline), or `now` has come (the timer): held inputs expire."""
        self._take(self.decider.expire_parked(self.ledger, now))
        return self

    def _take(self, outcome):
        if outcome is None:
            return
        if outcome.body is not None:
            self.bodies.append(json.loads(json.dumps(outcome.body)))  # a changelog round trip
            self.ledger.apply(outcome.body)
        self.decisions += outcome.decisions
        self.rejections += outcome.rejections

    def last(self, document_id):
        return self.ledger.decision(document_id)


def doc(document_id="TF-1", **kwargs):
    return samples.document(document_id, SELLER, **kwargs)


# -- worked figures --------------------------------------------------------------------------------

def test_vat_inside_a_price():
    assert vat_in_price(12_000_000, Decimal(16)) == 1_655_172  # 120,000.00 KZT holds 16,551.72
    assert vat_in_price(11_200, Decimal(12)) == 1_200
    assert vat_in_price(1, Decimal(16)) == 0


@given(st.integers(0, 10**14), st.sampled_from(["16", "12", "0", "20", "7.5", "12.25", "15.333"]))
def test_vat_in_integers_equals_the_decimal_formula(price, rate):
    from stream.money import round_tiyn

    r = Decimal(rate)
    assert vat_in_price(price, r) == round_tiyn(Decimal(price) * r / (100 + r) / 100)


def test_design_example_refund():
    d = doc("TF-2026-000123")
    run = Run().feed(d)
    assert run.last("TF-2026-000123")["decision"] == "pending"
    run.feed(samples.confirmation(d))
    got = run.last("TF-2026-000123")
    assert {k: got[k] for k in ("decision", "reasons", "vat", "commission", "refund", "pay_from", "pay_by")} == {
        "decision": "refund", "reasons": [], "vat": "16551.72", "commission": "2482.76", "refund": "14068.96",
        "pay_from": "2026-08-29", "pay_by": "2026-11-15"}
    assert [x["decision"] for x in run.decisions] == ["pending", "refund"]
    assert all(check(dict(x)) is None for x in run.decisions)


@pytest.mark.parametrize("receipt_on,pay_by", [
    ("2026-11-30", "2027-02-28"), ("2026-08-31", "2026-11-30"), ("2027-11-30", "2028-02-29"),
    ("2026-08-15", "2026-11-15"), ("2026-12-31", "2027-03-31")])
def test_pay_by_clamps_to_month_end(receipt_on, pay_by):
    assert add_months(date.fromisoformat(receipt_on), 3).isoformat() == pay_by


@pytest.mark.parametrize("issued,valid_to", [
    ("2026-08-15", "2026-11-30"), ("2026-08-01", "2026-11-30"), ("2026-08-31", "2026-11-30"),
    ("2026-11-02", "2027-02-28"), ("2027-11-30", "2028-02-29"), ("2026-12-31", "2027-03-31")])
def test_validity_to_the_end_of_the_third_month_after_issue(issued, valid_to):
    assert end_of_validity(date.fromisoformat(issued), 3).isoformat() == valid_to


def test_commission_rounds_half_up():
    # 100.00 KZT of VAT at 15%: 15.00; 0.10 at 15%: 0.015 -> 0.02
    lines = [samples.line("725.00")]  # holds 100.00 of VAT at 16%
    d = doc("TF-C", lines=lines * 1 + [samples.line("86500.00")])
    run = Run().feed(d, samples.confirmation(d))
    got = run.last("TF-C")
    vat = Decimal(got["vat"])
    assert Decimal(got["commission"]) == (vat * Decimal("0.15")).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    assert Decimal(got["refund"]) == vat - Decimal(got["commission"])


def test_commission_override_and_cap():
    decider = Decider(rules_module.load(commission_override="20"), DECIDER.keys, b"k" * 32)
    d = doc()
    got = Run(decider).feed(d, samples.confirmation(d)).last("TF-1")
    assert got["commission"] == "3310.34" and got["refund"] == "13241.38"
    with pytest.raises(RulesError, match="exceeds the cap of 20%"):
        rules_module.load(commission_override="20.01")


# -- refusal reasons -------------------------------------------------------------------------------

@pytest.mark.parametrize("country", ["AM", "BY", "KG", "KZ", "RU"])
def test_eaeu_citizen_refused_at_once(country):
    run = Run().feed(doc(country=country))
    got = run.last("TF-1")
    assert got["decision"] == "refusal" and got["reasons"] == ["buyer_eaeu_citizen"]
    assert got["refund"] == "0.00" and got["pay_from"] is None


def test_minimum_purchase_is_20_mci_of_the_receipt_year():
    assert RULES.minimum_tiyn(date(2026, 8, 15)) == 8_650_000
    assert RULES.minimum_tiyn(date(2025, 8, 15)) == 7_864_000
    below = doc("TF-B", lines=[samples.line("86499.99")])
    at = doc("TF-A", lines=[samples.line("86500.00")])
    run = Run().feed(below, at)
    assert run.last("TF-B")["reasons"] == ["below_minimum"]
    assert run.last("TF-A")["decision"] == "pending"
    old = doc("TF-2025", issued_at="2025-08-15T14:20:00+05:00", lines=[samples.line("80000.00", "12")])
    assert Run().feed(old).last("TF-2025")["decision"] == "pending"  # 78,640.00 in 2025


def test_receipts_of_two_days_or_two_registers():
    two_days = doc("TF-D", issued_at="2026-08-16T10:00:00+05:00", receipts=[
        {"number": "R1", "issued_at": "2026-08-15T12:00:00+05:00", "register_address": SELLER.address},
        {"number": "R2", "issued_at": "2026-08-16T09:00:00+05:00", "register_address": SELLER.address}])
    two_registers = doc("TF-E", receipts=[
        {"number": "R3", "issued_at": "2026-08-15T12:00:00+05:00", "register_address": SELLER.address},
        {"number": "R4", "issued_at": "2026-08-15T13:00:00+05:00", "register_address": "Almaty, Other St 9"}])
    run = Run().feed(two_days, two_registers)
    assert run.last("TF-D")["reasons"] == ["receipts_not_same_day"]
    assert run.last("TF-E")["reasons"] == ["receipts_not_same_day"]


def test_calendar_day_is_kazakhstan_time():
    # 23:30 UTC on the 14th is the 15th in Kazakhstan: one day with a receipt of 10:00 on the 15th
    d = doc("TF-K", issued_at="2026-08-15T11:00:00+05:00", receipts=[
        {"number": "R1", "issued_at": "2026-08-14T23:30:00Z", "register_address": SELLER.address},
        {"number": "R2", "issued_at": "2026-08-15T10:00:00+05:00", "register_address": SELLER.address}])
    assert Run().feed(d).last("TF-K")["decision"] == "pending"


def test_all_reasons_that_apply_are_listed_in_order():
    d = doc("TF-M", country="RU", lines=[samples.line("1000.00")], receipts=[
        {"number": "R1", "issued_at": "2026-08-14T12:00:00+05:00", "register_address": SELLER.address},
        {"number": "R2", "issued_at": "2026-08-15T12:00:00+05:00", "register_address": SELLER.address}])
    d["qr"] = samples.qr_for(doc("TF-OTHER"), SELLER)
    assert Run().feed(d).last("TF-M")["reasons"] == [
        "buyer_eaeu_citizen", "below_minimum", "receipts_not_same_day", "qr_mismatch"]


def test_export_refused_and_not_pilot_airport():
    a, b, c = doc("TF-1"), doc("TF-2"), doc("TF-3")
    run = Run().feed(a, b, c, samples.confirmation(a, outcome="refused"), samples.confirmation(b, airport="GUW"),
                     samples.confirmation(c, airport="SCO", outcome="refused"))
    assert run.last("TF-1")["reasons"] == ["export_refused"]
    assert run.last("TF-2")["reasons"] == ["not_pilot_airport"]
    assert run.last("TF-3")["reasons"] == ["export_refused", "not_pilot_airport"]
    for airport in ("NQZ", "ALA", "CIT", "HSA"):
        d = doc("TF-" + airport)
        assert Run().feed(d, samples.confirmation(d, airport=airport)).last(d["document_id"])["decision"] == "refund"


def test_validity_lapse_refuses_export_not_confirmed():
    d = doc()
    run = Run().feed(d).lapse(date(2026, 11, 30))
    assert run.last("TF-1")["decision"] == "pending"
    run.lapse(date(2026, 12, 1))
    got = run.last("TF-1")
    assert got["reasons"] == ["export_not_confirmed"] and got["decided_on"] == "2026-12-01"
    run.feed(samples.confirmation(d, at="2026-12-02T10:00:00+05:00"))  # too late: the refusal stands
    assert run.last("TF-1")["reasons"] == ["export_not_confirmed"]
    assert [x["decision"] for x in run.decisions] == ["pending", "refusal"]


def test_confirmation_after_validity_counts_as_none():
    d = doc()
    late = samples.confirmation(d, at="2026-12-01T00:30:00+05:00", airport="GUW")
    assert Run().feed(d, late).last("TF-1")["reasons"] == ["export_not_confirmed"]
    on_last_day = samples.confirmation(d, at="2026-11-30T23:59:00+05:00")
    assert Run().feed(d, on_last_day).last("TF-1")["decision"] == "refund"


def test_qr_tampered_swapped_or_alg_confused():
    d = doc()
    header, payload, signature = d["qr"].split(".")
    import base64

    tampered_payload = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered_payload["vat"] = "99999.99"
    forged = ".".join([header, base64.urlsafe_b64encode(
        json.dumps(tampered_payload).encode()).decode().rstrip("="), signature])
    swapped = samples.qr_for(d, OTHER)  # signed by another entity's (registered) key
    unknown = samples.qr_for(d, samples.entity("123456789012", seed="thief"))  # right kid, wrong key
    import base64

    import jwt
    from cryptography.hazmat.primitives import serialization

    public_pem = SELLER.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    hs = jwt.api_jws.PyJWS().encode(base64.urlsafe_b64decode(payload + "=="), public_pem + b"x" * 32,
                                    algorithm="HS256", headers={"kid": SELLER.kid})
    none = base64.urlsafe_b64encode(b'{"alg":"none","kid":"123456789012/sample"}').decode().rstrip("=") + \
        "." + payload + ".AAAA"
    for qr in (forged, swapped, unknown, hs, none, d["qr"][:-2] + "AA"):
        bad = {**d, "qr": qr}
        if check(dict(bad)) is not None:
            continue  # not even a JWS: rejected by the contract
        assert Run().feed(bad).last("TF-1")["reasons"] == ["qr_mismatch"], qr
    other_doc = doc("TF-2")
    assert Run().feed({**d, "qr": other_doc["qr"]}).last("TF-1")["reasons"] == ["qr_mismatch"]


def test_scan_at_the_airport_must_match():
    d = doc()
    for scanned in (doc("TF-2")["qr"], None):
        run = Run().feed(d, samples.confirmation(d, scanned=scanned))
        assert run.last("TF-1")["reasons"] == ["qr_mismatch"]
    paper = doc("TF-P", form="paper")
    assert Run().feed(paper, samples.confirmation(paper)).last("TF-P")["decision"] == "refund"


def test_no_keys_means_electronic_qr_cannot_verify():
    run = Run(Decider(RULES, samples.keyset(), b"k" * 32)).feed(doc())
    assert run.last("TF-1")["reasons"] == ["qr_mismatch"]


# -- double refunds --------------------------------------------------------------------------------

def test_receipt_counts_in_one_live_document():
    first = doc("TF-1")
    second = doc("TF-2", receipts=first["receipts"])
    run = Run().feed(first, second)
    assert run.last("TF-2")["reasons"] == ["duplicate_receipt"]
    # the first is cancelled (goods exchanged): its receipt is free for the replacement
    third = doc("TF-3", receipts=first["receipts"])
    run.feed(samples.cancellation(first, replaced_by="TF-3"), third)
    assert run.last("TF-1")["reasons"] == ["cancelled"]
    assert run.last("TF-3")["decision"] == "pending"
    # the same receipt number at another trading entity is another receipt
    other = samples.document("TF-4", OTHER, receipts=[{**first["receipts"][0], "register_address": OTHER.address}])
    assert run.feed(other).last("TF-4")["decision"] == "pending"


def test_same_receipt_twice_in_one_document():
    r = {"number": "R1", "issued_at": "2026-08-15T12:00:00+05:00", "register_address": SELLER.address}
    assert Run().feed(doc(receipts=[r, r])).last("TF-1")["reasons"] == ["duplicate_receipt"]


def test_refunded_once_and_redelivery_changes_nothing():
    d = doc()
    c = samples.confirmation(d)
    run = Run().feed(d, c)
    bodies, decisions = len(run.bodies), len(run.decisions)
    run.feed(d, c, d)
    assert (len(run.bodies), len(run.decisions), run.rejections) == (bodies, decisions, [])
    run.feed({**c, "official_id": "SRA-9"})
    assert [r["reason"] for r in run.rejections] == ["already_confirmed"]
    run.feed(samples.cancellation(d))
    assert [r["reason"] for r in run.rejections][-1] == "already_refunded"
    assert [x["decision"] for x in run.decisions] == ["pending", "refund"]


def test_crash_replay_rebuilds_the_same_ledger():
    a, b, c = doc("TF-1"), doc("TF-2", country="KZ"), doc("TF-3")
    run = Run().feed(a, b, c, samples.confirmation(a), samples.cancellation(c)).lapse(date(2027, 1, 1))
    replayed = Ledger()
    for body in run.bodies:
        replayed.apply(body)
    assert replayed.docs == run.ledger.docs and replayed.receipts == run.ledger.receipts
    run.feed(samples.confirmation(doc("TF-LATE")))
    replayed = Ledger()
    for body in run.bodies:
        replayed.apply(body)
    assert replayed.parked == run.ledger.parked != {}
    restored = Ledger()
    restored.apply(json.loads(json.dumps(run.ledger.snapshot())))
    assert restored.docs == run.ledger.docs and restored.pending == run.ledger.pending
    assert restored.parked == run.ledger.parked


# -- inputs that arrive before their document ----------------------------------------------------

def test_confirmation_before_its_document_is_held_then_applied():
    d = doc()
    run = Run()
    run.feed(samples.confirmation(d), samples.confirmation(d))  # the second is a redelivery
    assert run.decisions == [] and run.rejections == [] and list(run.ledger.parked) == ["TF-1"]
    run.feed(d)
    assert [x["decision"] for x in run.decisions] == ["pending", "refund"] and not run.ledger.parked
    held_cancel = Run().feed(samples.cancellation(d), d)
    assert held_cancel.last("TF-1")["reasons"] == ["cancelled"]
    both = Run().feed(samples.confirmation(d), {**samples.confirmation(d), "official_id": "SRA-7"}, d)
    assert [r["reason"] for r in both.rejections] == ["already_confirmed"]
    assert both.last("TF-1")["decision"] == "refund"


def test_held_inputs_expire_after_the_hold():
    decider = Decider(RULES, DECIDER.keys, b"k" * 32, hold_seconds=600)
    run = Run(decider)
    d = doc()
    outcome = handle_bytes(decider, run.ledger, CONFIRMATIONS, None, orjson.dumps(samples.confirmation(d)), 1000.0)
    run._take(outcome)
    run.end(now=1599.0)
    assert run.rejections == []
    run.end(now=1600.0)
    assert [r["reason"] for r in run.rejections] == ["unknown_document"] and not run.ledger.parked
    replayed = Ledger()
    for body in run.bodies:
        replayed.apply(body)
    assert replayed.parked == {}
    many = Run().feed(*[{**samples.confirmation(d), "official_id": f"SRA-{i}"} for i in range(6)])
    assert [r["reason"] for r in many.rejections] == ["unknown_document"] * 2  # at most 4 held


# -- rejections (input that cannot be applied) -----------------------------------------------------

def reasons_of(*docs):
    return [r["reason"] for r in Run().feed(*docs).end().rejections]


def test_input_rejections():
    d = doc()
    wrong_vat = doc(lines=[{**samples.line("120000.00"), "vat": "16551.73"}])
    assert reasons_of(wrong_vat) == ["vat_mismatch"]
    float_price = orjson.dumps({**d, "lines": [{**d["lines"][0], "price": 120000.0}]})
    assert reasons_of(float_price) == ["wrong_type"]
    assert reasons_of(samples.confirmation(d)) == ["unknown_document"]
    assert reasons_of(samples.cancellation(d)) == ["unknown_document"]
    assert reasons_of(d, samples.cancellation(d), {**samples.cancellation(d), "at": "2026-08-17T10:00:00+05:00"}) == [
        "already_cancelled"]
    assert reasons_of(d, {**d, "lines": [samples.line("130000.00")]}) == ["conflicting_duplicate"]
    assert reasons_of(d, samples.confirmation(d, at="2026-08-14T10:00:00+05:00")) == ["dates_out_of_order"]
    late_receipt = doc(receipts=[{"number": "R1", "issued_at": "2026-08-15T15:00:00+05:00",
                                  "register_address": SELLER.address}])
    assert reasons_of(late_receipt) == ["dates_out_of_order"]
    bad_date = orjson.dumps({**d, "issued_at": "2026-02-30T10:00:00+05:00"})
    assert reasons_of(bad_date) == ["invalid_date"]
    assert reasons_of(b"{not json") == ["malformed_json"]
    no_rate = doc(issued_at="2008-08-15T14:20:00+05:00")
    no_rate["buyer"]["passport"]["issued_on"] = "2001-01-01"
    assert reasons_of(no_rate) == ["no_rule_set"]


def test_rejection_details_hold_no_personal_data():
    d = doc()
    raws = [orjson.dumps({**d, "buyer": {**d["buyer"], "passport": {**d["buyer"]["passport"], "number": "c01x00t47"}}}),
            orjson.dumps({**d, "buyer": {**d["buyer"], "card_token": "4111 1111 1111 1111"}}),
            orjson.dumps({**d, "buyer": {**d["buyer"], "name": ""}})]
    run = Run().feed(*raws)
    text = json.dumps(run.rejections).lower()
    assert len(run.rejections) == 3 and "c01x00t47" not in text and "4111" not in text and "mueller" not in text


def test_bodies_hold_no_personal_data():
    d = doc()
    run = Run().feed(d, samples.confirmation(d))
    text = json.dumps(run.bodies)
    assert "C01X00T47" not in text and "MUELLER" not in text and "tok_4f9c8e21aa" not in text
    assert "*****0T47" in text


# -- the domain as the runtime drives it ----------------------------------------------------------

def test_domain_handle_does_not_mutate_and_keys_by_document_id():
    domain = TaxfreeDomain(DECIDER)
    state = domain.new_state(0)
    d = doc()
    effects = domain.handle(state, DOCUMENTS, b"TF-1", orjson.dumps(d), 0.0)
    assert state.docs == {}
    assert [k for k, _ in effects.outputs["taxfree.decisions"]] == [b"TF-1"]
    state.apply(effects.body)
    assert domain.lookup("TF-1")["decision"]["decision"] == "pending"
    wrong_key = domain.handle(state, CONFIRMATIONS, b"TF-9", orjson.dumps(samples.confirmation(d)), 0.0)
    assert orjson.loads(wrong_key.outputs["rejections"][0][1])["reason"] == "invalid_code"
    on_wrong_topic = domain.handle(state, CONFIRMATIONS, b"TF-1", orjson.dumps(d), 0.0)
    assert orjson.loads(on_wrong_topic.outputs["rejections"][0][1])["reason"] == "unknown_schema"
    # the timer: 2026-12-01 in Kazakhstan
    from datetime import datetime

    from stream.taxfree.rules import KZ_TIME

    # valid to 2026-11-30; the worker's timer waits the grace of 14 days for late (paper) confirmations
    assert domain.tick(state, datetime(2026, 12, 14, 23, 59, tzinfo=KZ_TIME).timestamp()) is None
    lapse = domain.tick(state, datetime(2026, 12, 15, 0, 1, tzinfo=KZ_TIME).timestamp())
    decided = orjson.loads(lapse.outputs["taxfree.decisions"][0][1])
    assert decided["reasons"] == ["export_not_confirmed"] and decided["decided_on"] == "2026-12-01"
    # a document that arrives long lapsed waits the hold for a confirmation right behind it
    late = Ledger()
    arrived = datetime(2027, 1, 10, 12, 0, tzinfo=KZ_TIME).timestamp()
    late.apply(domain.handle(late, DOCUMENTS, b"TF-1", orjson.dumps(d), arrived).body)
    assert domain.tick(late, arrived + 59) is None
    confirmed = domain.handle(late, CONFIRMATIONS, b"TF-1", orjson.dumps(samples.confirmation(d)), arrived + 1)
    assert orjson.loads(confirmed.outputs["taxfree.decisions"][0][1])["decision"] == "refund"
    assert domain.tick(late, arrived + 60).outputs["taxfree.decisions"]  # unconfirmed: refused after the hold


# -- the rules file --------------------------------------------------------------------------------

def test_rules_file_is_replaceable(tmp_path):
    data = json.loads(rules_module.DEFAULT_RULES.read_text())
    data["minimum_purchase_mci"].append({"from": "2026-09-01", "value": "10", "confirmed": True})
    data["pilot_airports"].append({"from": "2026-09-01", "value": ["ALA", "GUW"]})
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(data))
    rules = rules_module.load(path)
    assert rules.minimum_tiyn(date(2026, 9, 1)) == 4_325_000 and rules.minimum_tiyn(date(2026, 8, 31)) == 8_650_000
    assert "GUW" in rules.pilot_airports.at(date(2026, 9, 2)) and "GUW" not in rules.pilot_airports.at(date(2026, 8, 1))
    assert rules.minimum_purchase_mci.period(date(2026, 8, 1)).confirmed is False


@pytest.mark.parametrize("change,message", [
    (lambda d: d["commission_pct"].append({"from": "2027-01-01", "value": "21"}), "exceeds the cap of 20%"),
    (lambda d: d.pop("eaeu_states"), "eaeu_states must be a list"),
    (lambda d: d["vat_rate_pct"].append({"from": "2026-13-01", "value": "16"}), "not a YYYY-MM-DD"),
    (lambda d: d["vat_rate_pct"].append({"from": "2027-01-01", "value": 16.0}), "vat_rate_pct"),
    (lambda d: d["mci_kzt"].append({"year": 2026, "value": "1.00"}), "repeats year"),
    (lambda d: d["pilot_airports"].append({"from": "2027-01-01", "value": ["almaty"]}), "3-letter"),
])
def test_broken_rules_are_refused_clearly(tmp_path, change, message):
    data = json.loads(rules_module.DEFAULT_RULES.read_text())
    change(data)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RulesError, match=message):
        rules_module.load(path)


# -- the command -----------------------------------------------------------------------------------

def test_decide_command(tmp_path, monkeypatch):
    monkeypatch.setenv("CUSTOMS_DATA_DIR", str(tmp_path))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(samples.jwks(SELLER)))
    a, b, c = doc("TF-1"), doc("TF-2"), doc("TF-3", country="BY")
    lines = [a, b, c, samples.confirmation(a), samples.confirmation({"document_id": "TF-X", "form": "paper"})]
    source = b"".join(orjson.dumps(x) + b"\n" for x in lines) + b"\n"
    result = CliRunner().invoke(main, ["taxfree", "decide", "-", "--as-of", "2026-12-01", "--keys", str(jwks)],
                                input=source)
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.output.splitlines()]
    assert [x["schema"] for x in out] == ["rejection/1"] + ["taxfree-decision/1"] * 3
    assert [(x["document_id"], x["decision"], x["reasons"]) for x in out[1:]] == [
        ("TF-1", "refund", []), ("TF-2", "refusal", ["export_not_confirmed"]), ("TF-3", "refusal", ["buyer_eaeu_citizen"])]
    pending = CliRunner().invoke(main, ["taxfree", "decide", "-", "--as-of", "2026-11-30", "--keys", str(jwks)],
                                 input=source)
    assert json.loads(pending.output.splitlines()[2])["decision"] == "pending"
    refused = CliRunner().invoke(main, ["taxfree", "decide", "-", "--as-of", "2026-11-30", "--commission-pct", "25"],
                                 input=source)
    assert refused.exit_code != 0 and "exceeds the cap of 20%" in refused.output
    with_override = CliRunner().invoke(main, ["taxfree", "decide", "-", "--as-of", "2026-12-01", "--keys", str(jwks),
                                              "--commission-pct", "10"], input=source)
    assert json.loads(with_override.output.splitlines()[1])["commission"] == "1655.17"


def test_on_the_runtime_pipeline_with_crashes():
    """The real page pipeline in-process (tests/fixtures/harness.py): crashes between messages lose
    nothing, every document ends as `taxfree decide` decides it, and no document is decided twice
    differently."""
    from tests.fixtures.harness import DomainHarness

    docs = [doc(f"TF-{i}", country="KZ" if i == 3 else "DE", passport=f"P{i:08d}") for i in range(8)]
    messages = [*docs, samples.confirmation(docs[0]), samples.cancellation(docs[1]),
                samples.confirmation(docs[2], airport="GUW"), samples.confirmation(docs[4]), docs[4],
                samples.confirmation(docs[5], outcome="refused")]
    expected = {d["document_id"]: d for d in decide_lines([orjson.dumps(m) for m in messages], DECIDER,
                                                          date(2026, 9, 1)) if d["schema"] == "taxfree-decision/1"}
    with DomainHarness(TaxfreeDomain(DECIDER)) as h:
        for i, message in enumerate(messages):
            h.feed(TOPIC[message["schema"]], message, key=message["document_id"].encode())
            if i % 3 == 2:
                h.crash()
        h.drain()
        h.crash()
        final: dict[str, dict] = {}
        for d in h.sent("taxfree.decisions"):
            if d["document_id"] in final and final[d["document_id"]]["decision"] != "pending":
                assert d == final[d["document_id"]]  # a repeat is the same decision
            final[d["document_id"]] = d
        assert final == expected
        assert h.state(0).docs.keys() == set(expected)


def test_demo_step():
    from stream.taxfree.demo import demo_step

    lines = []
    demo_step(lines.append)
    text = "\n".join(lines)
    assert "TF-2026-000123  refund       16 551.72    2 482.76   14 068.96  2026-08-29 .. 2026-11-15" in text
    for reason in ("buyer_eaeu_citizen", "below_minimum", "not_pilot_airport", "export_refused",
                   "export_not_confirmed"):
        assert reason in text
    assert "TF-INV-2026Q3-123456789012" in text and "due by 2026-10-05" in text
    assert "C01X00T47" not in text


def test_pages_decide_like_single_messages():
    """A page/1 of inputs gives the decisions and rejections its items give one by one, in one record."""
    first = doc("TF-1")
    items = [first, doc("TF-2", receipts=first["receipts"]), samples.confirmation(first),
             {**doc("TF-3"), "lines": [{**samples.line("120000.00"), "vat": "1.00"}]}, doc("TF-4"),
             samples.cancellation(doc("TF-4")), samples.confirmation(doc("TF-5")), doc("TF-5"), "not an object"]
    single = Run().feed(*[x for x in items if isinstance(x, dict)])
    ledger = Ledger()
    ledger.apply(Run().feed(doc("TF-0")).bodies[0])
    before = json.loads(json.dumps(ledger.snapshot()))
    page = orjson.dumps({"schema": "page/1", "items": items[:-1]})
    outcome = handle_bytes(DECIDER, ledger, None, None, page)
    assert ledger.snapshot() == before  # handle does not mutate
    assert outcome.decisions == single.decisions
    assert [r["reason"] for r in outcome.rejections] == [r["reason"] for r in single.rejections] == ["vat_mismatch"]
    assert outcome.rejections[0]["detail"].startswith("lines[0].vat") or "vat" in outcome.rejections[0]["detail"]
    ledger.apply(json.loads(json.dumps(outcome.body)))
    for document_id in ("TF-1", "TF-2", "TF-4", "TF-5"):
        assert ledger.decision(document_id) == single.last(document_id)
    assert ledger.receipts == {**single.ledger.receipts, **{k: v for k, v in ledger.receipts.items() if v == "TF-0"}}
    bad_item = handle_bytes(DECIDER, Ledger(), None, None, orjson.dumps({"schema": "page/1", "items": [
        doc("TF-9"), {"schema": "taxfree-document/1"}]}))
    assert [r["detail"][:9] for r in bad_item.rejections] == ["items[1]:"]
    too_big = handle_bytes(DECIDER, Ledger(), None, None, orjson.dumps({"schema": "page/1", "items": [{}] * 1001}))
    assert [r["reason"] for r in too_big.rejections] == ["too_many_items"] and too_big.body is None
    assert [r["reason"] for r in handle_bytes(DECIDER, Ledger(), None, None, page[:-5]).rejections] == [
        "malformed_json"]


EXTREME_TIMESTAMPS = st.one_of(
    st.sampled_from(["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00Z",
                     "9999-12-31T23:59:59Z", "1899-12-31T23:59:59+05:00", "3000-01-01T00:00:00+05:00",
                     "2026-08-15T14:20:00+05:00", "2026-02-28T23:59:59-12:00"]),
    st.builds(lambda y, m, d, h, off: f"{y:04d}-{m:02d}-{d:02d}T{h:02d}:00:00{off}", st.integers(1, 9999),
              st.integers(1, 12), st.integers(1, 28), st.integers(0, 23), st.sampled_from(["Z", "+05:00", "-23:59"])))


@given(EXTREME_TIMESTAMPS, EXTREME_TIMESTAMPS, EXTREME_TIMESTAMPS, st.sampled_from(["0001-01-01", "2019-05-01",
                                                                                    "9999-12-31"]))
def test_no_date_makes_the_decider_raise(issued, receipt, confirmed, passport):
    d = doc()
    d["issued_at"], d["receipts"][0]["issued_at"] = issued, receipt
    d["buyer"]["passport"]["issued_on"] = passport
    d["qr"] = samples.qr_for(d, SELLER)
    run = Run().feed(d, samples.confirmation(d, at=confirmed), samples.cancellation(d, at=confirmed))
    run.end().lapse(date(2999, 12, 31))
    assert all(r["reason"] in REASONS for r in run.rejections)


@given(st.integers(0, 10**15), st.decimals(min_value=0, max_value=20, places=3, allow_nan=False, allow_infinity=False))
def test_commission_in_integers_equals_percent_of(vat, pct):
    from stream.money import percent_of
    from stream.taxfree.decide import commission_of

    assert commission_of(vat, pct) == percent_of(vat, pct)
