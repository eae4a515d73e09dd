"""What every route needs: the media-type rule, the caller, the JSON body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice.app import Blueprint, Request

from .. import clock
from ..services.bootstrap import ready, token_lookup
from . import schemas
from .auth import Principal, authenticate, org_read
from .errors import with_errors
from .requests import path_org

# Chalice would answer other media types itself, outside our error envelope: accept all, check in
# json_body() (reads take no body, so they ignore the media type).
ANY_MEDIA = ["*/*"]


def api_route(blueprint: Blueprint, path: str, method: str) -> Callable[[Callable[..., Any]], Any]:
    """Register an API route: every media type let in (above), every error a client can cause answered
    in the one envelope."""
    def register(handler: Callable[..., Any]) -> Any:
        return blueprint.route(path, methods=[method], content_types=ANY_MEDIA)(with_errors(handler))
    return register


def caller(request: Request) -> Principal:
    return authenticate(request.headers, token_lookup(ready()), clock.now())


def readable_org(request: Request, org: str) -> str:
    """The path's org, once the caller may read it (refusing the caller comes before "no such org")."""
    caller(request).require(org_read(org))
    return path_org(org)


def json_body(request: Request) -> Any:
    schemas.require_json(request.headers.get("content-type", ""))
    return schemas.parse_json(raw_body(request))


def raw_body(request: Request) -> bytes:
    """The body as sent (Chalice types it str or bytes; it is bytes for every request with a body)."""
    raw = request.raw_body
    return raw.encode() if isinstance(raw, str) else raw
