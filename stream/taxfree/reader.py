"""The fast reader of `taxfree.documents`: a message's bytes to its valid documents in one pass, or None.

A feed sends documents as `page/1` messages of hundreds of them; parsing the page with orjson and then
walking each document's fields in Python (contracts.check) was a sixth of the worker's time per
document. Here msgspec decodes the bytes straight into dicts against a typed taxfree-document/1
(types, required fields, literals, ranges and lengths checked in C while it decodes) and the feed
reader's compiled scan (ext/feedscan.pyx, kind 3) checks the patterns msgspec does not (ids, BIN,
timestamps, dates, passport, card, amounts, the JWS) and that the decoded documents hold every
key-value pair of the message: none repeated, none dropped (msgspec, like orjson, keeps a repeated
key's last value and drops keys the contract does not name).

It only *accepts*: a message it cannot vouch for whole (any item invalid, an unknown or repeated key,
an integral float in `qty`, a value the patterns refuse, not a page of documents) returns None, and
the agent reads it the usual way (orjson, then each item on its own), so every rejection, and every
document kept with fields the contract does not name, is that path's by construction. What it
accepts is exactly what that path would accept, unchanged: tests/test_taxfree_reader.py holds the
two equal. With the pure-Python backend it is off (`read_documents` is None): the twin is that path.
"""

from typing import Annotated, Callable, Literal, Optional, TypedDict  # (no __future__ annotations: msgspec resolves the local classes)

from stream.taxfree.contracts import MAX_LINES, MAX_QTY, MAX_RECEIPTS

MAX_PAGE_ITEMS = 1000  # agents.MAX_PAGE_ITEMS: a longer page is the usual path's to reject
DOCUMENT_KIND = 3  # ext/feedscan.pyx `vouch`: taxfree-document/1


def _build() -> Callable[[bytes], tuple[list[dict], bool] | None] | None:
    from stream.contracts import reader as feed_reader

    if feed_reader.backend() != "compiled":  # the pure-Python backend, or the scan (or msgspec) missing
        return None
    from typing import NotRequired

    from msgspec import Meta

    def text(hi: int):
        return Annotated[str, Meta(min_length=1, max_length=hi)]

    class Entity(TypedDict):
        bin: str
        name: text(200)
        address: text(500)

    class Receipt(TypedDict):
        number: str
        issued_at: str
        register_address: text(500)

    class Line(TypedDict):
        description: text(1000)
        qty: Annotated[int, Meta(ge=1, le=MAX_QTY)]
        price: str
        vat: str

    class Passport(TypedDict):
        country: str
        number: str
        issued_on: str

    class Buyer(TypedDict):
        passport: Passport
        name: text(200)
        card_token: str

    class Document(TypedDict):
        schema: Literal["taxfree-document/1"]
        document_id: str
        form: Literal["electronic", "paper"]
        issued_at: str
        trading_entity: Entity
        receipts: Annotated[list[Receipt], Meta(min_length=1, max_length=MAX_RECEIPTS)]
        lines: Annotated[list[Line], Meta(min_length=1, max_length=MAX_LINES)]
        buyer: Buyer
        qr: NotRequired[Optional[Annotated[str, Meta(max_length=4096)]]]

    read_vouched = feed_reader.vouched_reader(Document, DOCUMENT_KIND, MAX_PAGE_ITEMS, pages_first=True)

    def read(raw: bytes) -> tuple[list[dict], bool] | None:
        """(the message's documents, whether it was a page) when every one is valid, else None."""
        if raw[:1] != b"{":  # leading whitespace: the usual path's to read
            return None
        return read_vouched(raw)

    return read


read_documents = _build()
