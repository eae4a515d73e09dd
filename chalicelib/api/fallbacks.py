"""What no route serves still answers in the one envelope, locally and on AWS alike.

Chalice answers a method a route lacks with its own `{"Code": "MethodNotAllowedError"}`; API Gateway
(and Chalice's local gateway, `chalice local` and the test client) answers a path no route matches with
403 "Missing Authentication Token". So every route also takes every other method (405 with `Allow`,
OPTIONS 204 with `Allow`), and catch-all routes take every path up to CATCH_ALL_DEPTH segments (404).
On AWS these are real API Gateway methods and resources that reach the function, so the answers are the
same there; deeper paths get API Gateway's own answer, turned into the envelope by the gateway responses
in infra/chalice-merge.yaml. Chalice's own error bodies that are left (a 500 for an unexpected error) are
rewritten into the envelope by the middleware.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice.app import Chalice, Response

from ..observability import logger
from .errors import error_response

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# The deepest route has 6 segments. Each level is 7 API Gateway methods in the template; locally a deeper
# path gets chalice local's own 403, on AWS the gateway response.
CATCH_ALL_DEPTH = 12
_ANY_MEDIA = ["*/*"]
# Chalice's own error codes (chalice.app error_response and ChaliceViewError names), as envelope codes.
_CHALICE_CODES = {"MethodNotAllowedError": "method_not_allowed", "UnsupportedMediaType": "unsupported_media_type",
                  "BadRequestError": "bad_request", "BadRequest": "bad_request", "NotFoundError": "not_found",
                  "InternalServerError": "internal_error"}
_FALLBACK = "_answers_what_no_route_serves"


def served_routes(app: Chalice) -> set[tuple[str, str]]:
    """(method, path) of the routes the application declares, without the fallbacks."""
    return {(method, path) for path, entries in app.routes.items() for method, entry in entries.items()
            if not getattr(entry.view_function, _FALLBACK, False)}


def _fallback(view: Callable[..., Response]) -> Callable[..., Response]:
    setattr(view, _FALLBACK, True)
    return view


def _method_not_allowed(allowed: list[str]) -> Callable[..., Response]:
    allow = ", ".join(allowed)

    @_fallback
    def refuse_method(**_path: str) -> Response:
        return error_response(405, "method_not_allowed", "this route does not take that method",
                              {"allowed": allowed}, headers={"Allow": allow})

    return refuse_method


def _options(allowed: list[str]) -> Callable[..., Response]:
    @_fallback
    def describe_methods(**_path: str) -> Response:
        return Response(body="", status_code=204, headers={"Allow": ", ".join(allowed)})

    return describe_methods


@_fallback
def no_such_route(**_path: str) -> Response:
    return error_response(404, "not_found", "there is no such route")


def _in_envelope(event: Any, get_response: Callable[[Any], Response]) -> Response:
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
        code = _CHALICE_CODES.get(str(body["Code"]), "internal_error" if response.status_code >= 500 else "bad_request")
        message = "the service failed; retry later" if response.status_code >= 500 else str(body["Message"])
        if response.status_code >= 500:
            logger.error("unexpected error answered 500", extra={"path": getattr(event, "path", None)})
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
        return error_response(response.status_code, code, message, headers=headers)
    return response


def answer_what_no_route_serves(app: Chalice) -> None:
    """Call once, after every route is declared."""
    for path, entries in list(app.routes.items()):
        allowed = [*entries, "OPTIONS"] if "OPTIONS" not in entries else list(entries)
        missing = [method for method in METHODS if method not in entries and method != "OPTIONS"]
        if missing:
            app.route(path, methods=missing, content_types=_ANY_MEDIA)(_method_not_allowed(allowed))
        if "OPTIONS" not in entries:
            app.route(path, methods=["OPTIONS"], content_types=_ANY_MEDIA)(_options(allowed))
    for depth in range(CATCH_ALL_DEPTH + 1):
        path = "/" + "/".join(f"{{segment{i}}}" for i in range(depth))
        if path not in app.routes:
            app.route(path, methods=list(METHODS), content_types=_ANY_MEDIA)(no_such_route)
    app.register_middleware(_in_envelope, "http")

