"""The HTTP front of the emulator: Stripe's request pipeline.

Order of checks for a ``/v1`` request, as a client of the live API sees it:
authentication (401), rate limits (429 ``rate_limit``), injected failures,
idempotency (replay / 400 ``idempotency_error`` / 409 in use), parameter
validation against stripe-python's typed params (400), then execution under
the state lock. Injected latency is spent while the idempotency key is held,
like a slow request on Stripe's side. A "lost response" fault drops the
connection after the request was applied and its result saved.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterable
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.wrappers import Request, Response

from . import params as typed_params
from .errors import StripeError, api_error, authentication_error, rate_limited
from .faults import Decision, FaultInjector
from .formparse import decode
from .idempotency import IdempotencyStore, SavedResponse, fingerprint
from .limits import RateLimiter
from .metrics import RequestMetrics
from .routes import Route, url_map
from .store import Store, current_request, new_id, public

log = logging.getLogger(__name__)

NO_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the "
    "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
    "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details."
)


def to_json(obj: Any) -> bytes:
    return json.dumps(public(obj), indent=2).encode()


class ApiApp:
    def __init__(self, *, store: Store, idempotency: IdempotencyStore,
                 limiter: RateLimiter, faults: FaultInjector, metrics: RequestMetrics,
                 api_keys: Iterable[str] = ()) -> None:
        self.store = store
        self.idempotency = idempotency
        self.limiter = limiter
        self.faults = faults
        self.metrics = metrics
        self.api_keys = set(api_keys)
        self._urls = url_map()

    # -- entry point ----------------------------------------------------------
    def handle(self, request: Request) -> Response:
        started = time.monotonic()
        request_id = new_id("req")
        entry: dict[str, Any] = {"id": request_id, "method": request.method,
                                 "path": request.path, "at": time.time()}
        route, args = self._match(request)
        entry["endpoint"] = route.endpoint if route else f"{request.method} {request.path}"
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        entry["idempotency_key"] = key
        try:
            response, lose = self._pipeline(request, request_id, route, args, key, entry)
        except Exception:  # a bug here must still look like Stripe's 500
            log.exception("unhandled error serving %s %s", request.method, request.path)
            response, lose = self._error_response(api_error(), request_id), False
        if key is not None:
            response.headers["Idempotency-Key"] = key  # Stripe echoes the key
        entry.update(status=response.status_code, lost=lose,
                     duration_ms=round((time.monotonic() - started) * 1000, 1))
        entry.setdefault("invoice", self._invoice_of(args, request, response))
        self.metrics.record(entry)
        if lose:
            self._drop_connection(request)
        return response

    def _match(self, request: Request) -> tuple[Route | None, dict[str, str]]:
        try:
            route, args = self._urls.bind_to_environ(request.environ).match()
            return route, dict(args)
        except (NotFound, MethodNotAllowed):
            return None, {}

    def _pipeline(self, request: Request, request_id: str, route: Route | None,
                  args: dict[str, str], key: str | None,
                  entry: dict[str, Any]) -> tuple[Response, bool]:
        try:
            self._authenticate(request)
            if route is None:
                raise StripeError(
                    404, f"Unrecognized request URL ({request.method}: {request.path}). "
                    "Please see https://stripe.com/docs.", stored=False)
            if not self.limiter.admit(route.endpoint):
                raise rate_limited()
            decision = self.faults.decide(request.method, request.path)
            entry["fault"] = decision.fault
            if decision.error is not None:
                raise decision.error
        except StripeError as exc:
            return self._error_response(exc, request_id), False

        pairs = self._param_pairs(request)
        if key is not None:
            try:
                saved = self.idempotency.begin(key, route.endpoint, fingerprint(pairs))
            except StripeError as exc:
                return self._error_response(exc, request_id), False
            if saved is not None:
                entry["replayed"] = True
                return self._replay(saved, request_id), decision.lose_response
        response, stored = self._execute(route, args, pairs, request_id, key, decision)
        if key is not None:
            if stored:
                self.idempotency.complete(key, SavedResponse(
                    response.status_code, response.get_data(),
                    {k: v for k, v in response.headers.items()
                     if k.startswith("Stripe-")}, request_id))
            else:
                self.idempotency.abandon(key)
        return response, decision.lose_response

    def _execute(self, route: Route, args: dict[str, str], pairs: list[tuple[str, str]],
                 request_id: str, key: str | None, decision: Decision
                 ) -> tuple[Response, bool]:
        if decision.latency_s:
            time.sleep(decision.latency_s)
        token = current_request.set({"id": request_id, "idempotency_key": key})
        try:
            params = typed_params.validate(typed_params.params_type(route.params),
                                           decode(pairs))
            # Apply and serialise under the state lock: each request is atomic
            # and its response a consistent snapshot.
            with self.store.lock:
                response = self._json(200, route.handler(self.store, args, params), request_id)
            return response, True
        except StripeError as exc:
            return self._error_response(exc, request_id), exc.stored
        except Exception:
            log.exception("unhandled error in %s", route.endpoint)
            return self._error_response(api_error(), request_id), False
        finally:
            current_request.reset(token)

    # -- helpers --------------------------------------------------------------
    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        api_key: str | None = None
        if header.startswith("Bearer "):
            api_key = header[len("Bearer "):].strip()
        elif request.authorization is not None and request.authorization.type == "basic":
            api_key = request.authorization.username  # curl -u sk_test_...:
        if not api_key:
            raise authentication_error(NO_KEY_MESSAGE)
        if not (api_key.startswith("sk_test_") or api_key in self.api_keys):
            shown = api_key[:8] + "*" * 4 + api_key[-4:] if len(api_key) > 12 else api_key
            raise authentication_error(f"Invalid API Key provided: {shown}")

    @staticmethod
    def _param_pairs(request: Request) -> list[tuple[str, str]]:
        source = request.form if request.method == "POST" else request.args
        return list(source.items(multi=True))

    @staticmethod
    def _invoice_of(args: dict[str, str], request: Request,
                    response: Response) -> str | None:
        """Which invoice a request concerned, for per-invoice counts."""
        if "invoice" in args:
            return args["invoice"]
        source = request.form if request.method == "POST" else request.args
        if source.get("invoice"):
            return source["invoice"]
        if request.method == "POST" and request.path.rstrip("/") == "/v1/invoices":
            try:
                body = json.loads(response.get_data())
            except ValueError:
                return None
            if body.get("object") == "invoice":
                return str(body["id"])
        return None

    def _json(self, status: int, body: Any, request_id: str,
              headers: dict[str, str] | None = None) -> Response:
        response = Response(to_json(body), status=status, mimetype="application/json")
        response.headers["Request-Id"] = request_id
        response.headers["Stripe-Version"] = self.store.api_version or ""
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    def _error_response(self, exc: StripeError, request_id: str) -> Response:
        return self._json(exc.status, exc.body(), request_id, exc.headers)

    def _replay(self, saved: SavedResponse, request_id: str) -> Response:
        response = Response(saved.body, status=saved.status, mimetype="application/json")
        response.headers["Request-Id"] = request_id
        response.headers["Original-Request"] = saved.request_id
        response.headers["Idempotent-Replayed"] = "true"
        for name, value in saved.headers.items():
            response.headers[name] = value
        return response

    @staticmethod
    def _drop_connection(request: Request) -> None:
        """Close the client connection so the already-applied response is lost.

        werkzeug's development server exposes the connection socket as
        ``werkzeug.socket``; shutting it down makes the client see the peer
        close without a response, and werkzeug treats the failed write as a
        dropped connection.
        """
        sock: socket.socket | None = request.environ.get("werkzeug.socket")
        if sock is None:
            log.warning("lost_response fault ignored: server exposes no socket")
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

