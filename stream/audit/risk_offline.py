"""The offline twin of the risk agent: assessment requests in time order -> one risk-score/1 (or rejection/1) each.

Each request is assessed (stream.declaration.engine.Assessor), declared as declaration/2
(stream/declaration/v2.py) and scored by the same `Scorer` and `RiskState` the agent uses, with the
state learning from each declaration before the next is scored. Assessment and declaration building
run per chunk (they do not depend on the state); scoring stays in input order, a chunk scored as the agent
scores a page (`Scorer.decide_page`: the same scores as one by one, the re-assessments in batches).
"""
from __future__ import annotations

from typing import Iterable, Iterator

from stream._gc import gc_paused
from stream.audit.risk_profile import Profiles
from stream.audit.risk_score import RiskState, Scorer
from stream.contracts.validate import parse_json_line
from stream.declaration.engine import Assessor
from stream.declaration.v2 import DeclarationBuilder, Source
from stream.contracts.reasons import rejection

DEFAULT_OPERATOR_BIN = "000000000000"  # a request names no operator unless it carries `operator_bin`
CHUNK = 2000


class OfflineScorer:
    def __init__(self, assessor: Assessor, profiles: Profiles | None = None, builder: DeclarationBuilder | None = None,
                 state: RiskState | None = None):
        self.assessor = assessor
        self.scorer = Scorer(assessor, profiles)
        self.builder = builder if builder is not None else DeclarationBuilder(assessor.classifier)
        self.state = state if state is not None else RiskState()
        self.declarations = 0

    def score_documents(self, docs: Iterable[object]) -> Iterator[dict]:
        """One output per document, in order: risk-score/1, or the rejection/1 of its assessment."""
        chunk: list[object] = []
        for doc in docs:
            chunk.append(doc)
            if len(chunk) >= CHUNK:
                yield from self._chunk(chunk)
                chunk = []
        if chunk:
            yield from self._chunk(chunk)

    def score_lines(self, lines: Iterable[bytes]) -> Iterator[dict]:
        """Like `score_documents` for raw JSON lines (blank lines are skipped)."""
        return self.score_documents(parse_json_line(raw) for raw in lines if raw.strip())

    def _chunk(self, docs: list[object]) -> list[dict]:
        results: list[dict | None] = [None] * len(docs)
        wanted = []
        for i, doc in enumerate(docs):
            if isinstance(doc, tuple):  # (reason, detail) of a line that is not JSON or not an object
                results[i] = rejection(None, *doc)
            else:
                wanted.append(i)
        answers = self.assessor.assess([docs[i] for i in wanted])
        sources, where = [], []
        for i, answer in zip(wanted, answers):
            if answer.get("schema") != "assessment/1":
                results[i] = answer
                continue
            request = docs[i]
            sources.append(Source(answer, request, _text_field(request, "warehouse_id"),
                                  _text_field(request, "operator_bin") or DEFAULT_OPERATOR_BIN))
            where.append(i)
        declarations = self.builder.build_many(sources)
        with gc_paused():  # a chunk's objects live until it is scored: collections would scan them for nothing
            staged = self.state.begin_page()  # scored as the agent scores a page: re-assessments in batches
            decisions = self.scorer.decide_page(self.state, declarations)
            self.state.apply({"page": staged})  # applied as they were staged
        for i, declaration, decision in zip(where, declarations, decisions):
            self.declarations += 1
            if isinstance(decision, Exception):  # a defect (logged): this one is refused, the rest go on
                results[i] = rejection(declaration["order_id"], "internal_error",
                                       f"the declaration could not be scored: {type(decision).__name__}")
            else:
                results[i] = decision.output if decision.output is not None else rejection(
                    declaration["order_id"], "duplicate_declaration", "order_id: this declaration was scored before")
        return results  # type: ignore[return-value]


def _text_field(request: dict, name: str) -> str | None:
    value = request.get(name)
    return value if isinstance(value, str) else None
