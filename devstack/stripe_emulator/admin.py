"""JSON admin interface under ``/_emulator/``, for the local stack and on-call.

    GET    /_emulator/health
    GET    /_emulator/state                      customers, invoices (all lines), items
    POST   /_emulator/reset                      fresh account, initial configuration
    GET    /_emulator/requests[?log=N]           counts (total, by endpoint/status/invoice)
    POST   /_emulator/requests/reset
    GET    /_emulator/faults
    POST   /_emulator/faults                     {"match", "error_rate", "error_status",
                                                  "rate_limit_rate", "lock_timeout_rate",
                                                  "lost_response_rate", "latency_ms"}
    POST   /_emulator/faults/fail_next           {"match", "count", "kind", "status"}
    DELETE /_emulator/faults                     clear all faults
    DELETE /_emulator/faults/<id>
    POST   /_emulator/seed                       {"seed": 42}
    GET    /_emulator/rate_limits
    POST   /_emulator/rate_limits                {"global_per_second", "per_endpoint_per_second",
                                                  "endpoint_overrides"}  (null = unlimited)
    GET    /_emulator/idempotency                key counts
    POST   /_emulator/idempotency                {"ttl_seconds": 60}
    POST   /_emulator/idempotency/forget         forget all saved keys
    GET    /_emulator/webhooks                   configuration and deliveries
    POST   /_emulator/webhooks                   {"url", "secret"}
    GET    /_emulator/events[?type=invoice.paid]
    POST   /_emulator/invoices/<id>/payment_failed
    POST   /_emulator/invoices/<id>/decline_next_payment
    POST   /_emulator/payment_outcomes               {"outcome": "declines", "customer": "cus_… or email"}
                                                  (no customer: the default for everyone else)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .api import to_json
from .errors import StripeError

if TYPE_CHECKING:
    from .emulator import StripeEmulator

_RATE_LIMIT_FIELDS = ("global_per_second", "per_endpoint_per_second", "endpoint_overrides")


class AdminApp:
    def __init__(self, emulator: StripeEmulator) -> None:
        self.emu = emulator
        rules = [
            ("GET", "/health", self.health), ("GET", "/state", self.state),
            ("POST", "/reset", self.reset),
            ("GET", "/requests", self.requests), ("POST", "/requests/reset", self.reset_requests),
            ("GET", "/faults", self.faults), ("POST", "/faults", self.add_fault),
            ("POST", "/faults/fail_next", self.fail_next),
            ("DELETE", "/faults", self.clear_faults),
            ("DELETE", "/faults/<fault_id>", self.remove_fault),
            ("POST", "/seed", self.seed),
            ("GET", "/rate_limits", self.rate_limits), ("POST", "/rate_limits", self.set_rate_limits),
            ("GET", "/idempotency", self.idempotency), ("POST", "/idempotency", self.set_ttl),
            ("POST", "/idempotency/forget", self.forget_keys),
            ("GET", "/webhooks", self.webhooks), ("POST", "/webhooks", self.configure_webhooks),
            ("GET", "/events", self.events),
            ("POST", "/invoices/<invoice>/payment_failed", self.payment_failed),
            ("POST", "/invoices/<invoice>/decline_next_payment", self.decline_next_payment),
            ("POST", "/payment_outcomes", self.payment_outcome),
        ]
        self._urls = Map([Rule("/_emulator" + path, methods=[method], endpoint=fn)
                          for method, path, fn in rules], strict_slashes=False)

    def handle(self, request: Request) -> Response:
        try:
            fn, args = self._urls.bind_to_environ(request.environ).match()
            body = request.get_json(silent=True) or {}
            return _json(200, fn(request, body, **args))
        except HTTPException as exc:
            return _json(exc.code or 500, {"error": {"message": exc.description}})
        except StripeError as exc:
            return _json(exc.status, exc.body())
        except (ValueError, TypeError, KeyError) as exc:
            return _json(400, {"error": {"message": str(exc)}})

    # -- handlers: (request, json body, **path args) -> JSON-able ------------------
    def health(self, request: Request, body: dict[str, Any]) -> Any:
        return {"ok": True, "base_url": self.emu.base_url}

    def state(self, request: Request, body: dict[str, Any]) -> Any:
        return self.emu.state()

    def reset(self, request: Request, body: dict[str, Any]) -> Any:
        self.emu.reset()
        return {"reset": True}

    def requests(self, request: Request, body: dict[str, Any]) -> Any:
        counts = self.emu.request_counts()
        if "log" in request.args:
            counts["log"] = self.emu.request_log(int(request.args["log"] or 0) or None)
        return counts

    def reset_requests(self, request: Request, body: dict[str, Any]) -> Any:
        self.emu.reset_request_counts()
        return self.emu.request_counts()

    def faults(self, request: Request, body: dict[str, Any]) -> Any:
        return self.emu.faults.describe()

    def add_fault(self, request: Request, body: dict[str, Any]) -> Any:
        return {"id": self.emu.add_fault(**body)}

    def fail_next(self, request: Request, body: dict[str, Any]) -> Any:
        return {"id": self.emu.fail_next(**body)}

    def clear_faults(self, request: Request, body: dict[str, Any]) -> Any:
        self.emu.clear_faults()
        return self.emu.faults.describe()

    def remove_fault(self, request: Request, body: dict[str, Any], fault_id: str) -> Any:
        return {"id": fault_id, "removed": self.emu.remove_fault(fault_id)}

    def seed(self, request: Request, body: dict[str, Any]) -> Any:
        self.emu.seed(body.get("seed"))
        return {"seed": body.get("seed")}

    def rate_limits(self, request: Request, body: dict[str, Any]) -> Any:
        return self.emu.limiter.describe()

    def set_rate_limits(self, request: Request, body: dict[str, Any]) -> Any:
        unknown = set(body) - set(_RATE_LIMIT_FIELDS)
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        return self.emu.set_rate_limits(**body)

    def idempotency(self, request: Request, body: dict[str, Any]) -> Any:
        return {"keys": self.emu.idempotency_key_count(),
                "in_flight": self.emu.idempotency_keys_in_flight(),
                "ttl_seconds": self.emu.idempotency.ttl_seconds}

    def set_ttl(self, request: Request, body: dict[str, Any]) -> Any:
        self.emu.set_idempotency_ttl(float(body["ttl_seconds"]))
        return self.idempotency(request, body)

    def forget_keys(self, request: Request, body: dict[str, Any]) -> Any:
        return {"forgotten": self.emu.forget_idempotency_keys()}

    def webhooks(self, request: Request, body: dict[str, Any]) -> Any:
        return {"url": self.emu.webhooks.url, "secret": self.emu.webhook_secret,
                "deliveries": self.emu.webhook_deliveries()}

    def configure_webhooks(self, request: Request, body: dict[str, Any]) -> Any:
        self.emu.configure_webhooks(body.get("url"), body.get("secret"))
        return {"url": self.emu.webhooks.url, "secret": self.emu.webhook_secret}

    def events(self, request: Request, body: dict[str, Any]) -> Any:
        return {"data": self.emu.events(request.args.get("type"))}

    def payment_failed(self, request: Request, body: dict[str, Any], invoice: str) -> Any:
        return self.emu.mark_payment_failed(invoice)

    def decline_next_payment(self, request: Request, body: dict[str, Any], invoice: str) -> Any:
        self.emu.decline_next_payment(invoice)
        return {"invoice": invoice, "decline_next_payment": True}


    def payment_outcome(self, request: Request, body: dict[str, Any]) -> Any:
        self.emu.set_payment_outcome(str(body["outcome"]), body.get("customer"))
        return {"outcome": body["outcome"], "customer": body.get("customer")}


def _json(status: int, body: Any) -> Response:
    return Response(to_json(body), status=status, mimetype="application/json")
