"""GET /v1/taxfree/documents/{document_id} over HTTP: on the worker's Faust web server
(`faust_routes`, called by the runtime through `TaxfreeDomain.routes`) or standalone on aiohttp
(`make_app`, for tests and a read-only replica). Both answer through `access.answer`.

No answer says more than it must: 401 for no valid token (with ``WWW-Authenticate: Bearer``), 404
alike for a document that does not exist and one the caller may not see, and nothing is logged
but the status (never the token, the subject or the document's contents).
"""
from __future__ import annotations

import logging

from aiohttp import web

from stream.taxfree.access import TokenConfig, answer

PATH = "/v1/taxfree/documents/{document_id}"
log = logging.getLogger(__name__)

_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _headers(status: int) -> dict:
    if status == 401:
        return {**_HEADERS, "WWW-Authenticate": 'Bearer realm="taxfree"'}
    return _HEADERS


def make_app(lookup, tokens: TokenConfig | None = None, pii_key: bytes | None = None) -> web.Application:
    """A standalone aiohttp app serving the documents `lookup(document_id) -> record | None` finds."""
    from stream.taxfree.pii import pii_key as configured_pii_key

    tokens = tokens or TokenConfig.from_env()
    key = pii_key if pii_key is not None else configured_pii_key()

    async def get_document(request: web.Request) -> web.Response:
        status, body = answer(request.headers.get("Authorization"), request.match_info["document_id"],
                              lookup, tokens, key)
        log.debug("taxfree API: %d", status)
        return web.json_response(body, status=status, headers=_headers(status))

    app = web.Application()
    app.router.add_get(PATH, get_document, allow_head=False)
    return app


def faust_routes(app, lookup, tokens: TokenConfig | None = None, pii_key: bytes | None = None) -> None:
    """The same route on a Faust app's web server (CUSTOMS_WEB_PORT)."""
    from faust.web import View

    from stream.taxfree.pii import pii_key as configured_pii_key

    config = tokens or TokenConfig.from_env()
    key = pii_key if pii_key is not None else configured_pii_key()

    @app.page(PATH)
    class TaxfreeDocument(View):
        async def get(self, request, document_id: str):
            status, body = answer(request.headers.get("Authorization"), document_id, lookup, config, key)
            return self.json(body, status=status, headers=dict(_headers(status)))
