"""The risk scorer: declaration/2 in, risk-score/1 out, against indices learned from the declarations before it.

Pure (no Kafka, no clock): ``Scorer.decide(state, declaration)`` reads a `RiskState` and returns the
score plus the record body that learns from the declaration; ``RiskState.apply(body)`` is the only way
the state changes, live, in the offline CLI and on changelog replay, so all three score alike.

Indicators (all parameters in the risk profile in force on the declaration's date, stream/audit/risk_profile.py):
- ``undervaluation``: a line's value per unit far under the price index of its code and origin (the
  heading's while the code has too few samples): at most ``max_ratio`` of the median and ``min_z``
  robust standard deviations under it on the log scale; corrected fact: the index median.
- ``weight_mismatch``: the same for weight per unit; corrected fact: the index median weight.
- ``misclassification``: the classifier puts the description confidently in another heading, and that
  code pays more; corrected fact: the classified code.
- ``splitting``: one buyer's parcels (by ``buyer_ref``) within a rolling window, each under the duty-free
  threshold, together above it; corrected fact: the parcels as one consignment.
- ``trader_risk``: the operator's or marketplace's hit rate over the previous days of its window.

``revenue_at_risk`` of a hit is exact: the declaration is assessed again by the engine
(stream.declaration.engine.Assessor) under the rule set in force on its own ``declared_at`` with the
corrected fact, minus what was assessed (for splitting: the consignment's total minus what its parcels
paid). The score's own ``revenue_at_risk`` applies every line correction at once (no double counting),
or the splitting figure when larger. ``score`` = (1 - prod(1 - hit confidence)) x a money factor that
grows with revenue at risk, so the audit list is ordered by suspicion and money together.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
from dataclasses import dataclass, field
from decimal import Decimal

import orjson

from stream.audit.risk_index import Indices, bin_of, log_spread
from stream.audit.risk_profile import Profile, Profiles, load_profiles
from stream.contracts.reasons import rejection
from stream.declaration.engine import Assessor
from stream.declaration.v2 import validate_declaration_v2
from stream.money import MICRO, format_micro, format_tiyn, micro, parse_tiyn

log = logging.getLogger(__name__)

SCHEMA = "risk-score/1"
INDICATORS = ("undervaluation", "splitting", "misclassification", "weight_mismatch", "trader_risk")
STATE_VERSION = 1
SEEN_LIMIT = 20_000       # declaration ids remembered for deduplication (a redelivery comes soon after)
SELECTION_DAYS_KEPT = 7   # days of the audit capacity counters kept
_MAX_MEASURE6 = 100_000 * MICRO - 1  # the largest weight an assessment request line can carry
_MAX_MONEY6 = 10**9 * MICRO - 1      # the largest unit price it can carry (micro-KZT)


def digest_of(declaration: dict) -> str:
    return hashlib.sha256(orjson.dumps(declaration, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def random_draw(declaration_id: str) -> float:
    """A uniform number in [0, 1) fixed by the declaration id: a replay draws the same."""
    return int(hashlib.sha256(b"risk-random:" + declaration_id.encode()).hexdigest()[:13], 16) / 16**13


# -- state --------------------------------------------------------------------------------------------

class RiskState:
    """One partition's learned state: indices, buyers' recent parcels, traders' hit counts, capacity used."""

    def __init__(self):
        self.indices = Indices()
        self.seen: dict[str, str] = {}                    # declaration_id -> digest, oldest first
        self.buyers: dict[str, list[list[int]]] = {}      # buyer_ref -> [[day, value, weight6, total, eligible]]
        self.traders: dict[str, dict[int, list[int]]] = {}  # "operator:<bin>" | "marketplace:<name>" -> day -> [n, hits]
        self.selected: dict[int, int] = {}                # day ordinal -> declarations selected by risk
        self.day = 0                                      # the latest declaration day applied (ordinal)
        self._staged: list[dict] | None = None            # bodies of the page being scored, applied already
        # a memo, not state: trader -> (day ordinal, window days, declarations, hits) of the days before it
        self._window_sums: dict[str, tuple[int, int, int, int]] = {}

    # A page is scored declaration by declaration, each against the state the previous one left: the agent
    # stages each body (its lessons applied at once, its outcome when the re-assessments of its day are back:
    # ``Scorer.decide_page``) and the page's body {"page": [bodies]} is then applied by the runtime, which
    # finds them applied (the very list staged) and does nothing; a replay of the record (a state rebuilt
    # from the changelog) applies them one by one, to the same state.
    def begin_page(self) -> list[dict]:
        if self._staged:
            log.error("risk state: a page's %d staged bodies were never recorded", len(self._staged))
        self._staged = []
        return self._staged

    def stage(self, body: dict) -> None:
        """Apply what a body teaches (indices, the buyer's parcel, the traders' declarations) and keep it for
        the page's record; its outcome (hit, selection) follows with ``settle``."""
        self._learn(body)
        self._staged.append(body)

    def apply(self, body: dict) -> None:
        if body.get("snapshot"):
            self._restore(body)
            return
        page = body.get("page")
        if page is not None:
            if page is self._staged:
                self._staged = None  # staged live: applied already
                return
            for one in page:
                self._apply_one(one)
            return
        self._apply_one(body)

    def _apply_one(self, body: dict) -> None:
        self._learn(body)
        self.settle(body)

    def _learn(self, body: dict) -> None:
        day = body["day"]
        if day > self.day:
            self._expire(day, body["keep"])
            self.day = day
        ident = body["id"]
        self.seen[ident] = body["digest"]
        if len(self.seen) > SEEN_LIMIT:
            del self.seen[next(iter(self.seen))]
        self.indices.add_rows(body["index"])
        parcel = body.get("parcel")
        if parcel is not None:
            ref, entry, max_parcels = parcel
            window = self.buyers.setdefault(ref, [])
            window.append(list(entry))
            if len(window) > max_parcels:
                del window[0]
        for trader in body["traders"]:
            self.traders.setdefault(trader, {}).setdefault(day, [0, 0])[0] += 1
            self._changed(trader, day)

    def settle(self, body: dict) -> None:
        """Apply a staged body's outcome: the traders' hit and the day's selection."""
        day = body["day"]
        hit = body["hit"]
        if hit:
            for trader in body["traders"]:
                self.traders.setdefault(trader, {}).setdefault(day, [0, 0])[1] += hit
                self._changed(trader, day)
        if body.get("selected") == "risk":
            self.selected[day] = self.selected.get(day, 0) + 1

    def _changed(self, trader: str, day: int) -> None:
        memo = self._window_sums.get(trader)
        if memo is not None and memo[0] - memo[1] <= day < memo[0]:
            del self._window_sums[trader]  # a day of its window changed

    def _expire(self, day: int, keep: list[int]) -> None:
        split_days, trader_days = keep
        self._window_sums.clear()
        for ref in [r for r, window in self.buyers.items() if window[-1][0] <= day - split_days]:
            del self.buyers[ref]
        for ref, window in self.buyers.items():
            while window and window[0][0] <= day - split_days:
                del window[0]
        for trader, days in list(self.traders.items()):
            for old in [d for d in days if d < day - trader_days]:
                del days[old]
            if not days:
                del self.traders[trader]
        for old in [d for d in self.selected if d < day - SELECTION_DAYS_KEPT]:
            del self.selected[old]

    def snapshot(self) -> dict:
        return {"snapshot": True, "version": STATE_VERSION, "day": self.day, "indices": self.indices.snapshot(),
                "seen": [[k, d] for k, d in self.seen.items()],
                "buyers": {ref: [list(e) for e in window] for ref, window in self.buyers.items()},
                "traders": {t: [[d, n, h] for d, (n, h) in sorted(days.items())] for t, days in self.traders.items()},
                "selected": [[d, n] for d, n in sorted(self.selected.items())]}

    def _restore(self, snap: dict) -> None:
        self.__init__()
        self.day = snap["day"]
        self.indices.restore(snap["indices"])
        self.seen = {k: d for k, d in snap["seen"]}
        self.buyers = {ref: [list(e) for e in window] for ref, window in snap["buyers"].items()}
        self.traders = {t: {d: [n, h] for d, n, h in rows} for t, rows in snap["traders"].items()}
        self.selected = {d: n for d, n in snap["selected"]}


# -- decisions ----------------------------------------------------------------------------------------

@dataclass
class Decision:
    """What scoring one declaration gives: the document to emit (risk-score/1 or rejection/1, or None
    for a redelivered declaration already scored) and the body that learns from it (None: nothing)."""

    output: dict | None
    body: dict | None


@dataclass(slots=True)
class _Line:
    index: int
    qty: int
    value: int      # tiyn
    weight6: int    # micro-kg
    hs_code: str
    origin: str
    description: str
    sku: str


@dataclass(slots=True)
class _Hit:
    indicator: str
    line: int | None
    confidence: float
    evidence: dict
    correction: tuple | None = None   # (line index, field, new value) for line indicators
    consignment: list | None = None   # splitting: the buyer's earlier parcels of the window
    revenue: int = 0


@dataclass
class _Scoring:
    """A declaration between what the state tells of it and its outcome: its re-assessments may be pending."""
    decl: dict
    digest: str
    day: dt.date
    profile: Profile
    lines: list[_Line]
    hits: list[_Hit]                         # line indicators and splitting (a misclassification that pays
    split: _Hit | None                       # nothing is dropped once re-assessed)
    threshold: int | None                    # the parcel duty-free threshold in tiyn, for a parcel
    traders: list[str]
    trader: _Hit | None                      # trader_risk, scored last
    requests: list[tuple[_Hit, dict]]        # re-assessments still to make, one per hit
    fixes: list[_Hit] = field(default_factory=list)  # the hits with a line correction
    combined: dict | None = None             # the request with every line correction, still to assess
    combined_answer: dict | None = None


def _ratio_text(value: float) -> str:
    return str(Decimal(value).quantize(Decimal("0.0001")))


def _round_float(value: float) -> int:
    return int(Decimal(value).to_integral_value())


class Scorer:
    """Scores declarations under one set of rules (for re-assessment) and one set of risk profiles."""

    def __init__(self, assessor: Assessor, profiles: Profiles | None = None):
        self.assessor = assessor
        self.rules = assessor.rules
        self.profiles = profiles if profiles is not None else load_profiles()
        self._profile_floats: dict[str, tuple] = {}

    # The one entry point for a declaration: a declaration/2 (already parsed) against a partition's state.
    def decide(self, state: RiskState, declaration: object, *, valid: bool = False) -> Decision:
        """``valid``: the declaration passed validate_declaration_v2 already (the fast reader vouched for it)."""
        checked = self._check(state, declaration, valid)
        if isinstance(checked, Decision):
            return checked
        scoring = self._begin(state, *checked)
        self._resolve([scoring])
        body = self._lessons(scoring)
        return Decision(self._finish(state, scoring, body), body)

    def decide_page(self, state: RiskState, declarations: list, *, valid: bool = False) -> list["Decision | Exception"]:
        """A page's decisions, in order, exactly as ``decide`` one by one with each body applied before the
        next declaration, each body staged on ``state`` (``RiskState.begin_page`` comes first); an exception
        is the defect that stopped one declaration (the page goes on).

        What makes it cheaper is the re-assessment: a declaration's outcome (its revenue at risk, hence its
        score, its selection and its trader's hit) waits for the re-assessments of the declarations of its day,
        which the engine assesses in one batch, while what it teaches (indices, the buyer's parcel, the
        traders' declarations) is applied at once (``RiskState.stage``). The next declaration reads only the
        lessons, the traders' hits of the days before its own and, at its selection, the selections before
        it, so the outcomes are settled, in order, before a declaration of another day is scored and at the
        end of the page. A line's misclassification counts only if it pays more, and whether the line
        teaches the indices depends on it: such a declaration is re-assessed at once."""
        results: list = [None] * len(declarations)
        waiting: list[tuple[int, _Scoring, dict]] = []
        for i, declaration in enumerate(declarations):
            try:
                checked = self._check(state, declaration, valid)
                if isinstance(checked, Decision):
                    results[i] = checked
                    continue
                if waiting and checked[2] != waiting[0][1].day:
                    self._settle_all(state, waiting, results)
                    waiting = []
                scoring = self._begin(state, *checked)
                body = self._lessons(scoring)
            except Exception as exc:  # a defect: nothing of this declaration was applied
                log.exception("risk: a declaration of a page failed")
                results[i] = exc
                continue
            state.stage(body)
            waiting.append((i, scoring, body))
        self._settle_all(state, waiting, results)
        return results

    def _settle_all(self, state: RiskState, waiting: list, results: list) -> None:
        self._resolve([scoring for _, scoring, _ in waiting])
        for i, scoring, body in waiting:
            try:
                results[i] = Decision(self._finish(state, scoring, body), body)
            except Exception as exc:  # a defect after its lessons were applied: they stay, with no outcome
                log.exception("risk: a declaration of a page failed after its lessons were applied")
                body["hit"], body["selected"] = 0, None
                results[i] = exc
            state.settle(body)

    def _check(self, state: RiskState, declaration: object, valid: bool = False):
        """The Decision that ends a declaration here (rejection, redelivery), or what scoring it starts from."""
        problem = None if valid else validate_declaration_v2(declaration)
        if problem is not None:
            ref = declaration.get("declaration_id") if isinstance(declaration, dict) else None
            return Decision(rejection(ref if isinstance(ref, str) else None, *problem), None)
        ident = declaration["declaration_id"]
        digest = digest_of(declaration)
        known = state.seen.get(ident)
        if known is not None:
            if known == digest:
                return Decision(None, None)
            return Decision(rejection(ident, "conflicting_duplicate",
                                      "declaration_id: scored before with different content"), None)
        day = dt.date.fromisoformat(declaration["declared_at"])
        profile = self.profiles.in_force(day)
        if profile is None:
            return Decision(rejection(ident, "no_risk_profile",
                                      f"declared_at: no risk profile is in force on {day.isoformat()}"), None)
        return declaration, digest, day, profile

    def _begin(self, state: RiskState, decl: dict, digest: str, day: dt.date, profile: Profile) -> "_Scoring":
        """Everything the state tells of a declaration, and its re-assessment requests (not yet assessed)."""
        lines = _lines_of(decl)
        hits: list[_Hit] = []
        for line in lines:
            hits.extend(self._line_hits(state, profile, line, decl["lines"][line.index]))
        threshold = self._threshold_tiyn(decl, day)
        split = self._splitting(state, profile, decl, day, threshold)
        if split is not None:
            hits.append(split)
        traders = [f"operator:{decl['operator_bin']}"] + (
            [f"marketplace:{decl['marketplace']}"] if decl["marketplace"] is not None else [])
        scoring = _Scoring(decl, digest, day, profile, lines, hits, split, threshold, traders,
                           self._trader_risk(state, profile, traders, day), self._requests(decl, lines, hits, split))
        if any(h.indicator == "misclassification" for h in hits):
            self._resolve([scoring])  # whether its lines teach the indices depends on it
        scoring.hits = hits = [h for h in hits if h.indicator != "misclassification" or h.revenue > 0]  # "pays more"
        scoring.fixes = [h for h in hits if h.correction is not None]
        if len(scoring.fixes) > 1:
            scoring.combined = _request(decl, lines, [h.correction for h in scoring.fixes], f"{decl['order_id']}.combined")
        return scoring

    def _lessons(self, scoring: "_Scoring") -> dict:
        """The record body of a declaration: what it teaches, and its outcome (``hit``, ``selected``) once
        ``_finish`` knows it."""
        decl, profile, ordinal = scoring.decl, scoring.profile, scoring.day.toordinal()
        return {
            "id": decl["declaration_id"], "digest": scoring.digest, "day": ordinal,
            "keep": [profile.split_window_days, profile.trader_window_days],
            "index": self._learned(scoring.lines, scoring.hits),
            "parcel": self._parcel_entry(decl, scoring.lines, ordinal, scoring.threshold, profile),
            "traders": scoring.traders, "hit": 0, "selected": None,
        }

    def _finish(self, state: RiskState, scoring: "_Scoring", body: dict) -> dict:
        """The risk-score/1 of a re-assessed declaration; its outcome goes into ``body``."""
        decl, profile, hits, split = scoring.decl, scoring.profile, scoring.hits, scoring.split
        fixes = scoring.fixes
        if len(fixes) > 1:
            answer = scoring.combined_answer
            if answer is None or answer.get("schema") != "assessment/1":
                combined = max(h.revenue for h in fixes)
            else:
                combined = max(0, parse_tiyn(answer["total"]) - parse_tiyn(decl["total"]))
        else:
            combined = fixes[0].revenue if fixes else 0
        revenue = max(combined, split.revenue if split is not None else 0)
        found = any(h.revenue > 0 for h in hits)
        if scoring.trader is not None:
            hits.append(scoring.trader)
        score = self._combine(profile, hits, revenue)
        ordinal = scoring.day.toordinal()
        selected = None
        if hits and score >= float(profile.threshold) and state.selected.get(ordinal, 0) < profile.daily_capacity:
            selected = "risk"
        elif random_draw(decl["declaration_id"]) < float(profile.random_rate):
            selected = "random"
        body["hit"], body["selected"] = 1 if found else 0, selected
        return {
            "schema": SCHEMA, "order_id": decl["order_id"], "declaration_id": decl["declaration_id"],
            "declared_at": decl["declared_at"], "score": score, "revenue_at_risk": format_tiyn(revenue),
            "selected": selected, "profile": profile.id,
            "hits": [{"indicator": h.indicator, "line": h.line, "score": round(h.confidence, 4),
                      "revenue_at_risk": format_tiyn(h.revenue), "evidence": h.evidence}
                     for h in sorted(hits, key=lambda h: (INDICATORS.index(h.indicator), h.line or 0))],
        }

    @staticmethod
    def _learned(lines: list[_Line], hits: list[_Hit]) -> list[list]:
        """The bins this declaration teaches the indices. A fact found suspicious is not learned (an index
        fed its own frauds drifts towards them); a misclassified line teaches nothing of its declared code."""
        suspicious = {(h.line, h.indicator) for h in hits if h.line is not None}
        out = []
        for line in lines:
            index, qty = line.index, line.qty
            if suspicious:
                if (index, "misclassification") in suspicious:
                    continue
                value_bin = None if (index, "undervaluation") in suspicious else bin_of(_per_unit(line.value, qty))
                weight_bin = None if (index, "weight_mismatch") in suspicious else bin_of(_per_unit(line.weight6, qty))
                if value_bin is None and weight_bin is None:
                    continue
            else:
                value_bin, weight_bin = bin_of(_per_unit(line.value, qty)), bin_of(_per_unit(line.weight6, qty))
            out += [[key, value_bin, weight_bin] for key in Indices.keys(line.hs_code, line.origin)]
        return out

    # -- line indicators --------------------------------------------------------------------------------

    def _floats(self, profile: Profile) -> tuple:
        """The profile's line-indicator parameters as the floats the indicators compare with (once per profile)."""
        found = self._profile_floats.get(profile.id)
        if found is None or found[0] is not profile:
            rules = tuple((float(r.min_spread), float(r.max_ratio), float(r.min_z), float(r.full_z))
                          for r in (profile.undervaluation, profile.weight_mismatch))
            found = self._profile_floats[profile.id] = (profile, rules, float(profile.heading_confidence),
                                                        float(profile.min_classifier_confidence))
        return found

    def _line_hits(self, state: RiskState, profile: Profile, line: _Line, raw: dict) -> list[_Hit]:
        hits = []
        indices = state.indices
        _, rules, heading_confidence, min_classifier_confidence = self._floats(profile)
        for indicator, table, (min_spread, max_ratio, min_z, full_z), amount in (
                ("undervaluation", indices.values, rules[0], line.value),
                ("weight_mismatch", indices.weights, rules[1], line.weight6)):
            picked = indices.pick(table, line.hs_code, line.origin, profile.min_samples)
            if picked is None:
                continue
            level, index = picked
            median = index.median()
            per_unit = max(amount / line.qty, 1.0)
            ratio = per_unit / median
            if ratio > max_ratio:
                continue  # not far enough under the median, whatever the spread
            spread = log_spread(index.upper_quartiles(), min_spread)
            z = (math.log(median) - math.log(per_unit)) / spread
            if z < min_z:
                continue
            corrected = max(_round_float(median), 1)
            if indicator == "undervaluation":
                evidence = {"unit_value": format_tiyn(_round_float(per_unit)), "index_median": format_tiyn(corrected)}
            else:
                evidence = {"unit_weight_kg": format_micro(_round_float(per_unit), 0),
                            "index_median_kg": format_micro(corrected, 0)}
            evidence.update({"ratio": _ratio_text(ratio), "z": _ratio_text(z), "samples": index.count,
                             "index": level})
            field = "value" if indicator == "undervaluation" else "weight6"
            confidence = min(1.0, z / full_z)
            if level.startswith("heading"):
                confidence *= heading_confidence
            hits.append(_Hit(indicator, line.index, confidence, evidence,
                             (line.index, field, corrected * line.qty)))
        classified = raw.get("hs_classified")
        if classified is not None and classified[:4] != line.hs_code[:4]:
            confidence = raw["confidence"]
            if confidence >= min_classifier_confidence:
                hits.append(_Hit("misclassification", line.index, float(confidence),
                                 {"declared_code": line.hs_code, "classified_code": classified,
                                  "confidence": _ratio_text(confidence)},
                                 (line.index, "hs_code", classified)))
        return hits

    # -- splitting ----------------------------------------------------------------------------------------

    def _threshold_tiyn(self, decl: dict, day: dt.date) -> int | None:
        if decl["flow"] != "parcel":
            return None
        rule_set = self.rules.rule_sets.in_force("parcel", day)
        eur = decl["fx"].get("EUR")
        if rule_set is None or eur is None:
            return None
        return (rule_set.threshold_eur6 * micro(eur) + 5 * 10**9) // 10**10

    @staticmethod
    def _parcel_entry(decl: dict, lines: list[_Line], ordinal: int, threshold: int | None, profile: Profile):
        if threshold is None or decl["buyer_ref"] is None:
            return None
        value = parse_tiyn(decl["customs_value"])
        if value > threshold:
            return None  # a parcel above the threshold paid its duty: it splits nothing
        weight6 = sum(line.weight6 for line in lines)
        eligible = 1 if value >= profile.split_min_parcel_share * threshold else 0
        return [decl["buyer_ref"], [ordinal, value, weight6, parse_tiyn(decl["total"]), eligible],
                profile.split_max_parcels]

    def _splitting(self, state: RiskState, profile: Profile, decl: dict, day: dt.date, threshold: int | None):
        ref = decl["buyer_ref"]
        if threshold is None or ref is None:
            return None
        value = parse_tiyn(decl["customs_value"])
        if value > threshold:
            return None
        ordinal = day.toordinal()
        window = [e for e in state.buyers.get(ref, ()) if e[0] > ordinal - profile.split_window_days]
        if not window:
            return None
        together = value + sum(e[1] for e in window)
        if together <= threshold:
            return None
        parcels = len(window) + 1
        eligible = sum(e[1] for e in window if e[4]) + (value if value >= profile.split_min_parcel_share * threshold
                                                        else 0)
        confidence = min(1.0, (parcels - 1) / (profile.split_full_parcels - 1)) * eligible / together
        if confidence <= 0:
            return None
        return _Hit("splitting", None, confidence,
                    {"parcels": parcels, "window_days": profile.split_window_days,
                     "window_value": format_tiyn(together), "threshold": format_tiyn(threshold),
                     "paid": format_tiyn(parse_tiyn(decl["total"]) + sum(e[3] for e in window))},
                    consignment=window)

    # -- trader risk --------------------------------------------------------------------------------------

    @staticmethod
    def _trader_risk(state: RiskState, profile: Profile, traders: list[str], day: dt.date) -> _Hit | None:
        ordinal = day.toordinal()
        window = profile.trader_window_days
        best = None
        for trader in traders:
            memo = state._window_sums.get(trader)
            if memo is not None and memo[0] == ordinal and memo[1] == window:
                n, h = memo[2], memo[3]
            else:
                days = state.traders.get(trader)
                if not days:
                    continue
                n = h = 0
                for d, (count, hits) in days.items():
                    if ordinal - window <= d < ordinal:
                        n += count
                        h += hits
                state._window_sums[trader] = (ordinal, window, n, h)  # a memo: the same answer until a day changes
            if n < profile.trader_min_declarations:
                continue
            rate = h / n
            if rate >= float(profile.trader_min_hit_rate) and (best is None or rate > best[1]):
                best = (trader.split(":", 1)[0], rate, n)
        if best is None:
            return None
        kind, rate, n = best
        return _Hit("trader_risk", None, min(rate, float(profile.trader_max_score)),
                    {"trader": kind, "hit_rate": _ratio_text(rate), "declarations": n,
                     "window_days": profile.trader_window_days})

    # -- revenue at risk: assess again under the rule set of the declaration's date ----------------------------

    @staticmethod
    def _requests(decl: dict, lines: list[_Line], hits: list[_Hit], split: _Hit | None) -> list[tuple[_Hit, dict]]:
        """(hit, request) of each hit with a corrected fact that a request can carry."""
        out = []
        for hit in hits:
            if hit.correction is not None:
                request = _request(decl, lines, [hit.correction], f"{decl['order_id']}.{hit.indicator}.{hit.line}")
                if request is not None:
                    out.append((hit, request))
        if split is not None:
            request = _consignment(decl, lines, split.consignment or [])
            if request is not None:
                out.append((split, request))
        return out

    def _resolve(self, scorings: list["_Scoring"]) -> None:
        """Assess the pending requests of these declarations in one batch: each hit's revenue at risk, and
        the combined correction's answer."""
        owners, requests = [], []
        for scoring in scorings:
            for hit, request in scoring.requests:
                owners.append((scoring, hit))
                requests.append(request)
            scoring.requests = []
            if scoring.combined is not None:
                owners.append((scoring, None))
                requests.append(scoring.combined)
                scoring.combined = None
        if not requests:
            return
        for (scoring, hit), answer in zip(owners, self._assess(requests)):
            if hit is None:
                scoring.combined_answer = answer
            elif answer.get("schema") != "assessment/1":
                hit.evidence["reassessment"] = answer["reason"]
            else:
                before = parse_tiyn(scoring.decl["total"]) if hit is not scoring.split else parse_tiyn(
                    hit.evidence["paid"])
                hit.revenue = max(0, parse_tiyn(answer["total"]) - before)

    def _assess(self, requests: list[dict]) -> list[dict]:
        """The engine's answers; a defect in it (it never raises on bad input) costs the request it met, as an
        internal_error answer, not the batch."""
        try:
            return self.assessor.assess(requests, validated=True)  # valid by construction (_request, _consignment)
        except Exception:
            log.exception("risk: a batch of %d re-assessments failed; assessing them one by one", len(requests))
        answers = []
        for request in requests:
            try:
                [answer] = self.assessor.assess([request], validated=True)
            except Exception as exc:
                log.exception("risk: a re-assessment failed")
                answer = rejection(request.get("order_id"), "internal_error", f"{type(exc).__name__}"[:100])
            answers.append(answer)
        return answers

    @staticmethod
    def _combine(profile: Profile, hits: list[_Hit], revenue: int) -> float:
        if not hits:
            return 0.0
        doubt = 1.0
        for hit in hits:
            doubt *= 1.0 - hit.confidence
        floor = float(profile.zero_revenue_weight)
        money = floor + (1.0 - floor) * revenue / (revenue + profile.revenue_scale_tiyn)
        return round(min(1.0, max(0.0, (1.0 - doubt) * money)), 4)


def _lines_of(decl: dict) -> list[_Line]:
    return [_Line(i, line["qty"], parse_tiyn(line["value"]), micro(line["weight_kg"]), line["hs_code"],
                  line["origin"], line["description"], line["sku"]) for i, line in enumerate(decl["lines"])]


def _per_unit(amount: int, qty: int) -> int:
    return (amount + qty // 2) // qty


def _request(decl: dict, lines: list[_Line], corrections: list[tuple], order_id: str) -> dict | None:
    """The declaration as an assessment request again (amounts in KZT), with corrected facts.

    Parcels are charged on the order's value and weight, so each line goes in as one unit of its
    value and weight (exact). Warehouse lines keep their quantity (specific duties count pieces):
    the unit price is value / qty in micro-KZT, exact once rounded back to the tiyn for qty < 10,000.
    """
    fixed: dict[int, dict] = {}
    for index, name, value in corrections:
        fixed.setdefault(index, {})[name] = value
    out = []
    parcel = decl["flow"] == "parcel"
    for line in lines:
        change = fixed.get(line.index, {})
        value = change.get("value", line.value)
        weight6 = change.get("weight6", line.weight6)
        qty = 1 if parcel else line.qty
        unit_weight6 = weight6 if parcel else (weight6 + qty // 2) // qty
        unit_price6 = (value * 10**4 + qty // 2) // qty
        if unit_weight6 > _MAX_MEASURE6 or unit_price6 > _MAX_MONEY6:
            return None  # beyond what a request line can carry: no exact re-assessment
        out.append({"sku": line.sku, "qty": qty, "unit_price": format_micro(unit_price6, 2),
                    "currency": "KZT", "description": line.description, "origin": line.origin,
                    "hs_code": change.get("hs_code", line.hs_code), "unit_weight_kg": format_micro(unit_weight6, 1)})
    return {"schema": "assessment-request/1", "order_id": order_id[:128], "flow": decl["flow"],
            "ordered_at": decl["ordered_at"], "declared_at": decl["declared_at"], "lines": out}


def _consignment(decl: dict, lines: list[_Line], window: list[list[int]]) -> dict | None:
    """The buyer's parcels of the window plus this one as one parcel (one line per parcel)."""
    parcels = [(e[1], e[2]) for e in window] + [(parse_tiyn(decl["customs_value"]), sum(x.weight6 for x in lines))]
    out = []
    for n, (value, weight6) in enumerate(parcels):
        if weight6 > _MAX_MEASURE6 or value * 10**4 > _MAX_MONEY6:
            return None
        out.append({"sku": f"P{n}", "qty": 1, "unit_price": format_micro(value * 10**4, 2), "currency": "KZT",
                    "description": "parcel", "origin": lines[0].origin, "hs_code": lines[0].hs_code,
                    "unit_weight_kg": format_micro(weight6, 1)})
    return {"schema": "assessment-request/1", "order_id": f"{decl['order_id']}.splitting"[:128], "flow": "parcel",
            "ordered_at": decl["ordered_at"], "declared_at": decl["declared_at"], "lines": out}
