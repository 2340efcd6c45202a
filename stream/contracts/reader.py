"""The feed reader: one message's bytes to its validated documents and its rejections, in one call.

``read_message(raw, schema)`` takes a message (one document or a `page/1` of them) and returns, in
order, one entry per document: the validated document (a dict, exactly what ``orjson.loads`` makes of
it, integral floats in integer fields stored as int) or a `Rejection` (ref, reason, detail). It is the
pure path of today, `parse_json_line` + `page_items` + the contract's validator per item, made fast:

- **fast path** (compiled): msgspec decodes the bytes straight into dicts against typed definitions of
  the contract (types, required fields, literals, ranges, lengths: checked in C while it decodes); the
  scan of ext/feedscan.pyx counts the message's key-value pairs and looks for a key named twice
  (msgspec, like orjson, keeps the last value and drops keys the contract does not name), and checks
  the string patterns msgspec does not (ids, codes, decimal strings, possible dates) over the decoded
  fields, in C (held equal to the validator's regexes by tests/test_reader.py); the pairs the decoded
  documents hold must be all the message has.
- The fast path only *accepts*. A message it cannot accept whole (a decode error, a repeated or unknown
  key, an escaped key, a value that fails a pattern, an integral float in an integer field) is read by
  the pure path, so every rejection is the pure path's by construction, and so is every document it
  keeps (its unknown fields included).
- ``CUSTOMS_STREAM_PUREPYTHON=1`` (or a missing compiled scan) runs the pure path alone: the twin.
"""

from typing import Annotated, Callable, Literal, NamedTuple, Optional

from stream._backend import backend as _backend_of, load_kernel
from stream.contracts import validate as _v
from stream.contracts.validate import (MAX_LINES, MAX_PAGE_ITEMS, MAX_QTY, parse_json_line, ref_of,
                                       validate_document)

__all__ = ["Rejection", "backend", "read_message", "read_pure", "reader_for", "ACCEPTS"]

_scan_module = load_kernel("feedscan", "stream.contracts._feedscan", "stream.contracts._feedscan_py")


def backend() -> str:
    """"compiled" (msgspec and the compiled scan first, the pure path on anything else) or "python"."""
    return _backend_of("feedscan") if _FAST is not None else "python"


class Rejection(NamedTuple):
    """A document (or a message) refused: what its `rejection/1` says."""

    ref: str | None
    reason: str
    detail: str


def _page_items(doc: dict):
    from stream.runtime.pages import page_items  # stream.runtime imports the contracts

    return page_items(doc)


def read_pure(raw: bytes, validate: Callable[[object], tuple[str, str] | None] = validate_document,
              envelope_ref: bool = True) -> list:
    """The pure path (and the twin): parse, unwrap a page, validate each item on its own.

    A page whose envelope is invalid is one rejection, with the page's ref (``envelope_ref``) or null."""
    doc = parse_json_line(raw)
    if isinstance(doc, tuple):
        return [Rejection(None, *doc)]
    items = _page_items(doc)
    if isinstance(items, tuple):
        return [Rejection(ref_of(doc) if envelope_ref else None, *items)]
    out = []
    for item in items:
        problem = validate(item)
        out.append(item if problem is None else Rejection(ref_of(item), *problem))
    return out


# the validator each contract's pure path uses when the reader is asked for that schema
ACCEPTS: dict[str, Callable] = {
    "assessment-request/1": _v.validate_request,
    "order/1": validate_document,
    "goods-manifest/1": validate_document,
}


def read_message(raw: bytes, schema: str, validate: Callable | None = None, envelope_ref: bool = True) -> list:
    """Every document of one message as a validated dict or a `Rejection`, in order.

    ``schema`` is the contract the fast path reads (a message of it, or a page of them); ``validate``
    the pure path's per-item check (default: ``ACCEPTS[schema]``), whose rejections are the answer for
    anything else; ``envelope_ref``: see `read_pure`.
    """
    check = ACCEPTS[schema] if validate is None else validate
    fast = _FAST
    if fast is not None:
        items = fast[schema](raw)
        if items is not None:
            return items
    return read_pure(raw, check, envelope_ref)


def reader_for(schema: str, validate: Callable | None = None, envelope_ref: bool = True) -> Callable[[bytes], list]:
    """`read_message` bound to its arguments, for a loop over many messages (the backend chosen now)."""
    check = ACCEPTS[schema] if validate is None else validate
    fast = _FAST[schema] if _FAST is not None else None
    if fast is None:
        return lambda raw: read_pure(raw, check, envelope_ref)

    def read(raw: bytes) -> list:
        items = fast(raw)
        return items if items is not None else read_pure(raw, check, envelope_ref)
    return read


# -- the fast path ---------------------------------------------------------------------------------


def _build_fast():
    try:
        import msgspec
    except ImportError:  # pragma: no cover - msgspec is a dependency; without it the pure path serves
        return None
    if _backend_of("feedscan") != "compiled":
        return None
    from typing import TypedDict

    try:
        from typing import NotRequired
    except ImportError:  # Python 3.10
        from typing_extensions import NotRequired

    Meta = msgspec.Meta

    def text(lo: int, hi: int):
        return Annotated[str, Meta(min_length=lo, max_length=hi)]

    Qty = Annotated[int, Meta(ge=1, le=MAX_QTY)]

    class Buyer(TypedDict):
        iin: str
        name: text(1, 200)

    class RequestLine(TypedDict):
        sku: str
        qty: Qty
        unit_price: str
        currency: str
        description: text(1, 1000)
        hs_code: NotRequired[Optional[Annotated[str, Meta(max_length=32)]]]
        origin: str
        unit_weight_kg: str
        unit_volume_l: NotRequired[str]
        category: NotRequired[text(1, 100)]

    class Request(TypedDict):
        schema: Literal["assessment-request/1"]
        order_id: str
        marketplace: NotRequired[text(1, 64)]
        ordered_at: str
        declared_at: NotRequired[str]
        flow: Literal["parcel", "warehouse"]
        buyer: NotRequired[Buyer]
        lines: Annotated[list[RequestLine], Meta(min_length=1, max_length=MAX_LINES)]

    class OrderLine(TypedDict):
        sku: str
        qty: Qty
        unit_price: str
        currency: str

    class Order(TypedDict):
        schema: Literal["order/1"]
        order_id: str
        marketplace: text(1, 64)
        warehouse_id: str
        ordered_at: str
        buyer: Buyer
        lines: Annotated[list[OrderLine], Meta(min_length=1, max_length=MAX_LINES)]

    class ManifestLine(TypedDict):
        sku: str
        description: text(1, 1000)
        hs_code: NotRequired[Optional[Annotated[str, Meta(max_length=32)]]]
        origin: str
        qty: Qty
        unit_price: str
        currency: str
        unit_weight_kg: str
        unit_volume_l: NotRequired[str]
        category: NotRequired[text(1, 100)]

    class Manifest(TypedDict):
        schema: Literal["goods-manifest/1"]
        manifest_id: str
        operator_bin: str
        warehouse_id: str
        marketplace: text(1, 64)
        arrived_at: str
        lines: Annotated[list[ManifestLine], Meta(min_length=1, max_length=MAX_LINES)]

    def reader(doc_type, kind: int):
        read = vouched_reader(doc_type, kind)

        def documents(raw: bytes) -> list | None:
            """The message's documents when the fast path can vouch for every one of them, else None."""
            found = read(raw)
            return None if found is None else found[0]
        return documents

    return {
        "assessment-request/1": reader(Request, 0),
        "order/1": reader(Order, 1),
        "goods-manifest/1": reader(Manifest, 2),
    }


def vouched_reader(doc_type, kind: int, max_items: int = MAX_PAGE_ITEMS, pages_first: bool = False):
    """A fast reader of messages of one contract (``doc_type``: its typed definition for msgspec; ``kind``: its
    check in ext/feedscan.pyx `vouch`): a message's bytes to (its documents, whether it was a `page/1` of at
    most ``max_items``) when it can vouch for every one, else None (the usual path reads it). msgspec decodes
    against the definition; the compiled scan checks the string patterns msgspec does not (ids, codes,
    decimal strings, possible dates), held equal to the validators' regexes, and that the decoded documents
    hold every key-value pair of the message. ``pages_first``: try the page first (a feed of pages). Only
    with the compiled scan (the caller checks `backend`)."""
    import msgspec
    from typing import TypedDict

    Meta = msgspec.Meta

    class Page(TypedDict):
        schema: Literal["page/1"]
        items: Annotated[list[doc_type], Meta(min_length=1, max_length=max_items)]

    decoders = [(msgspec.json.Decoder(doc_type).decode, False), (msgspec.json.Decoder(Page).decode, True)]
    if pages_first:
        decoders.reverse()
    vouch = _scan_module.vouch
    decode_error = msgspec.ValidationError, msgspec.DecodeError

    def read(raw: bytes) -> tuple[list, bool] | None:
        for decode, paged in decoders:
            try:
                decoded = decode(raw)
            except decode_error:
                continue
            docs, extra = (decoded["items"], len(decoded)) if paged else ([decoded], 0)
            return (docs, paged) if vouch(raw, docs, kind, extra) else None
        return None
    return read


_FAST = _build_fast()
