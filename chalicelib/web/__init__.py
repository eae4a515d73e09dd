"""The billing page: static files served by the API itself, so it works with no internet access.

The page is plain HTML, CSS and JavaScript that draws its charts as SVG: no build step, no CDN,
nothing fetched but this app's own JSON API, with the org-reader token the user gives it.
"""

from __future__ import annotations

import json
from pathlib import Path

from chalice.app import Response

HERE = Path(__file__).parent
ASSETS = {"billing.js": "text/javascript; charset=utf-8", "billing.css": "text/css; charset=utf-8"}
# The page only talks to this origin; the token is kept in memory and never put in a URL sent to us.
HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def billing_page() -> Response:
    body = (HERE / "billing.html").read_text(encoding="utf-8")
    return Response(body=body, status_code=200, headers={"Content-Type": "text/html; charset=utf-8", **HEADERS})


def billing_asset(name: str) -> Response:
    if name not in ASSETS:
        error = {"error": {"code": "not_found", "message": "no such file", "details": {}}}
        return Response(body=json.dumps(error), status_code=404, headers={"Content-Type": "application/json"})
    body = (HERE / name).read_text(encoding="utf-8")
    return Response(body=body, status_code=200, headers={"Content-Type": ASSETS[name], **HEADERS})
