"""The fast reader of `risk.declarations`: a message's bytes to its valid declaration/2 documents, or None.

The router hands the risk agent pages of hundreds of declarations; parsing a page with orjson, checking it for
repeated keys and walking each declaration's fields in Python (validate_declaration_v2) was a fifth of the
agent's CPU. Here msgspec decodes the bytes straight into dicts against a typed declaration/2 (types,
required fields, literals, ranges and lengths checked in C while it decodes) and the feed reader's compiled
scan (ext/feedscan.pyx, kind 4) checks what msgspec does not: the patterns (ids, BIN, buyer_ref, timestamp,
date, KZT amounts, rates, tariff codes, weights), that a line names hs_classified and confidence together,
and that the decoded documents hold every key-value pair of the message (none repeated, none dropped:
msgspec keeps a repeated key's last value and drops keys the contract does not name).

It only *accepts*, as the tax-free reader does (stream/taxfree/reader.py): a message it cannot vouch for
whole (any declaration invalid, a declaration/1 or assessment/1 among them, an unknown or repeated key, an
integral float `qty`, not a page of declarations) returns None and the agent reads it the usual way, so
every rejection is that path's by construction, and what it accepts is exactly what that path would accept,
unchanged (tests/test_risk_reader.py). With the pure-Python backend it is off (`read_declarations` is None).
"""

from typing import Annotated, Callable, Literal, Optional, TypedDict, Union  # (no __future__ annotations: msgspec resolves the local classes)

from stream.contracts.validate import MAX_LINES, MAX_PAGE_ITEMS, MAX_QTY

DECLARATION_KIND = 4  # ext/feedscan.pyx `vouch`: declaration/2


def _build() -> Callable[[bytes], tuple[list[dict], bool] | None] | None:
    from stream.contracts import reader as feed_reader

    if feed_reader.backend() != "compiled":  # the pure-Python backend, or the scan (or msgspec) missing
        return None
    from typing import NotRequired

    from msgspec import Meta

    def text(hi: int):
        return Annotated[str, Meta(min_length=1, max_length=hi)]

    class Line(TypedDict):
        sku: str
        hs_code: str
        hs_source: Literal["declared", "classified"]
        value: str
        duty: str
        excise: str
        vat: str
        origin: str
        qty: Annotated[int, Meta(ge=1, le=MAX_QTY)]
        weight_kg: str
        description: text(1000)
        hs_classified: NotRequired[str]
        confidence: NotRequired[Union[Annotated[int, Meta(ge=0, le=1)], Annotated[float, Meta(ge=0, le=1)]]]

    class Declaration(TypedDict):
        schema: Literal["declaration/2"]
        order_id: str
        declaration_id: str
        warehouse_id: Optional[str]
        operator_bin: str
        marketplace: Optional[text(64)]
        buyer_ref: Optional[str]
        ordered_at: str
        flow: Literal["parcel", "warehouse"]
        declared_at: str
        rule_set: str
        currency: Literal["KZT"]
        fx: dict[str, str]
        customs_value: str
        duty: str
        excise: str
        vat: str
        total: str
        lines: Annotated[list[Line], Meta(min_length=1, max_length=MAX_LINES)]
        flags: list[Annotated[str, Meta(min_length=1)]]

    read_vouched = feed_reader.vouched_reader(Declaration, DECLARATION_KIND, MAX_PAGE_ITEMS, pages_first=True)

    def read(raw: bytes) -> tuple[list[dict], bool] | None:
        """(the message's documents, whether it was a page) when every one is valid, else None."""
        if raw[:1] != b"{":  # leading whitespace: the usual path's to read
            return None
        return read_vouched(raw)

    return read


read_declarations = _build()
