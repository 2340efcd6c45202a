"""Feed messages carry one document or a `page/1` of them: the one place that unwraps a page."""
from __future__ import annotations

from stream.contracts.validate import MAX_PAGE_ITEMS, validate_page


def is_page(doc: dict) -> bool:
    return doc.get("schema") == "page/1"


def page_items(doc: dict) -> list | tuple[str, str]:
    """The documents a parsed feed message carries (a page's items, or the document itself), or
    (reason, detail) for a page whose envelope is invalid. Items are not checked here: each stands
    or falls on its own (validate_document)."""
    if not is_page(doc):
        return [doc]
    items = doc.get("items")
    if isinstance(items, list) and 0 < len(items) <= MAX_PAGE_ITEMS:
        return items
    return validate_page(doc) or ("unknown_schema", "page/1 without items")
