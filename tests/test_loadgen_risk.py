"""The risk feed of the load generator: deterministic, planted fraud with exact ground truth, honest confounders."""
from __future__ import annotations

import orjson
import pytest

from stream.declaration.engine import Assessor
from stream.loadgen import FeedConfig, RiskFeedConfig, generate, risk_feed
from stream.money import parse_tiyn
from stream.rules import load_rules


@pytest.fixture(scope="module")
def assessor() -> Assessor:
    return Assessor(load_rules())


@pytest.fixture(scope="module")
def feed(assessor):
    return list(risk_feed(RiskFeedConfig(declarations=3000, seed=3, days=4), assessor))


def test_same_seed_same_feed(assessor, feed):
    again = list(risk_feed(RiskFeedConfig(declarations=3000, seed=3, days=4), assessor))
    assert again == feed
    other = list(risk_feed(RiskFeedConfig(declarations=3000, seed=4, days=4), assessor))
    assert other != feed


def test_every_request_is_valid_in_time_order_and_each_fraud_kind_is_planted(assessor, feed):
    docs = [doc for doc, _ in feed]
    answers = assessor.assess(docs)
    assert all(a["schema"] == "assessment/1" for a in answers)
    stamps = [doc["ordered_at"] for doc in docs]
    assert stamps == sorted(stamps)
    kinds = {truth.fraud for _, truth in feed}
    assert kinds == {None, "undervaluation", "misclassification", "weight_mismatch", "splitting"}
    share = sum(1 for _, t in feed if t.fraud) / len(feed)
    assert 0.04 < share < 0.12
    assert len({doc["order_id"] for doc in docs}) == len(docs)


def test_truth_revenue_is_what_the_declaration_underpays(assessor, feed):
    for doc, truth in feed:
        if truth.fraud is None:
            assert truth.revenue == 0
        else:
            assert truth.revenue > 0
        [answer] = assessor.assess([doc])
        assert truth.customs_value == parse_tiyn(answer["customs_value"])


def test_split_parcels_are_each_duty_free_and_together_dutiable(assessor, feed):
    splits = [(doc, t) for doc, t in feed if t.fraud == "splitting"]
    assert splits
    for doc, truth in splits:
        [answer] = assessor.assess([doc])
        assert answer["total"] == "0.00" and doc["flow"] == "parcel"
        base = doc["order_id"].rsplit("-", 1)[0]
        group = [d for d, _ in feed if d["order_id"].rsplit("-", 1)[0] == base and d["order_id"] != base]
        assert len({d["buyer"]["iin"] for d in group}) == 1 and len(group) >= 2


def test_no_personal_data_in_the_truth(feed):
    for doc, truth in feed[:200]:
        assert doc["buyer"]["iin"] not in repr(truth)


def test_the_warehouse_feed_prices_have_two_decimals_and_repeat_for_a_seed():
    pages = list(generate(FeedConfig(orders=50, page_size=25, skus=100, seed=1)))
    prices = [line["unit_price"] for page in pages for doc in orjson.loads(page.value)["items"]
              for line in doc["lines"]]
    assert prices and all(p.count(".") == 1 and len(p.split(".")[1]) == 2 for p in prices)
    assert list(generate(FeedConfig(orders=50, page_size=25, skus=100, seed=1))) == pages
