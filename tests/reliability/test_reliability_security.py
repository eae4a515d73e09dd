"""Over HTTP, through `chalice local`: every route refuses a missing, unknown or wrongly scoped token with 401
or 403 in the error envelope, and the table is byte-for-byte what it was; Stripe webhooks are refused unless
signed recently with our secret, and a delivery repeated has no effect the second time."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from reliability_support import Api, create_token, new_org_name, put_org
from support.writes import changes_to

WEBHOOK = "/v1/stripe/webhook"


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str  # {org} and {invoice} are filled in per request
    allowed: frozenset[str]  # roles that may call it: admin, usage, reader (a read token of the target org)
    body: dict[str, Any] | None = None


def _event(org: str) -> dict[str, Any]:
    return {"id": f"sec-{uuid.uuid4().hex[:8]}", "org": org, "app": "web", "meter": "egress", "quantity": "7",
            "region": "iad", "timestamp": datetime.now(UTC).isoformat()}


READERS = frozenset({"admin", "reader"})
ADMIN = frozenset({"admin"})
MONTHS = "from=2026-01&to=2027-12"
ROUTES = [
    Route("put_org", "PUT", "/v1/orgs/{org}", ADMIN, {"name": "Renamed", "email": "new@example.com"}),
    Route("get_org", "GET", "/v1/orgs/{org}", READERS),
    Route("post_usage", "POST", "/v1/usage", frozenset({"admin", "usage"}), {"events": "{events}"}),
    Route("list_invoices", "GET", "/v1/orgs/{org}/invoices", READERS),
    Route("upcoming_invoice", "GET", "/v1/orgs/{org}/invoices/upcoming", READERS),
    Route("get_invoice", "GET", "/v1/orgs/{org}/invoices/{invoice}", READERS),
    Route("add_invoice_item", "POST", "/v1/orgs/{org}/invoices/{invoice}/items", ADMIN,
          {"client_id": "sec-item", "kind": "credit", "amount_cents": 1, "description": "goodwill"}),
    Route("finalize_invoice", "POST", "/v1/orgs/{org}/invoices/{invoice}/finalize", ADMIN),
    Route("void_invoice", "POST", "/v1/orgs/{org}/invoices/{invoice}/void", ADMIN),
    Route("monthly_totals_of_org", "GET", f"/v1/reports/monthly-totals?{MONTHS}&org={{org}}", READERS),
    Route("monthly_totals_of_all", "GET", f"/v1/reports/monthly-totals?{MONTHS}", ADMIN),
    Route("get_subscriptions", "GET", "/v1/orgs/{org}/subscriptions", READERS),
    Route("change_plan", "POST", "/v1/orgs/{org}/subscriptions", ADMIN,
          {"change_id": "sec-plan", "plan": "support-premium"}),
    Route("cancel_plan", "POST", "/v1/orgs/{org}/subscriptions/cancel", ADMIN,
          {"change_id": "sec-cancel", "family": "support"}),
    Route("grant_credit", "POST", "/v1/orgs/{org}/credits", ADMIN,
          {"client_id": "sec-grant", "amount_cents": 100, "reason": "goodwill", "description": "sorry"}),
    Route("get_credits", "GET", "/v1/orgs/{org}/credits", READERS),
    Route("put_budget", "PUT", "/v1/orgs/{org}/budget", ADMIN, {"amount_cents": 5000}),
    Route("get_budget", "GET", "/v1/orgs/{org}/budget", READERS),
    Route("list_alerts", "GET", "/v1/orgs/{org}/alerts", READERS),
    Route("create_webhook_endpoint", "POST", "/v1/orgs/{org}/webhook-endpoints", ADMIN,
          {"url": "http://127.0.0.1:9/hooks", "event_types": ["invoice.synced"]}),
    Route("list_webhook_endpoints", "GET", "/v1/orgs/{org}/webhook-endpoints", READERS),
    Route("delete_webhook_endpoint", "DELETE", "/v1/orgs/{org}/webhook-endpoints/{endpoint}", ADMIN),
    Route("enable_webhook_endpoint", "POST", "/v1/orgs/{org}/webhook-endpoints/{endpoint}/enable", ADMIN),
    Route("list_webhook_deliveries", "GET", "/v1/orgs/{org}/webhook-endpoints/{endpoint}/deliveries", READERS),
    Route("usage_over_time", "GET", "/v1/orgs/{org}/usage?from=2026-11-01&to=2026-11-08&group_by=app", READERS),
]

# Who knocks, and what the answer must be when the route does not let them in.
UNAUTHENTICATED = {
    "no_token": None,
    "unknown_token": "Bearer not-a-token-we-issued",
    "basic_scheme": "Basic YWRtaW46YWRtaW4=",
    "empty_bearer": "Bearer ",
    "oversized_token": "Bearer " + "x" * 201,
}
SCOPED = ("other_org_reader", "usage", "reader")  # valid tokens whose scopes must not reach these routes
CASES = [(route.name, who) for route in ROUTES for who in UNAUTHENTICATED] + [
    (route.name, who) for route in ROUTES for who in SCOPED
    if not (who == "usage" and "usage" in route.allowed) and not (who == "reader" and "reader" in route.allowed)
]


@dataclass
class Scene:
    victim: str
    invoice: str
    tokens: dict[str, str]  # role → token
    endpoint: str = ""  # the victim's webhook endpoint


def budget_and_endpoint(api: Api, admin: str, org: str) -> str:
    """Give the org a budget and a (disabled) webhook endpoint, so their routes have something to act on."""
    assert api.call("PUT", f"/v1/orgs/{org}/budget", admin, json={"amount_cents": 1000}).status_code == 200
    created = api.call("POST", f"/v1/orgs/{org}/webhook-endpoints", admin,
                       json={"url": "http://127.0.0.1:9/hooks", "event_types": ["budget.threshold_crossed"]})
    assert created.status_code == 201, created.text
    endpoint = str(created.json()["id"])
    from datetime import timedelta

    from chalicelib.storage.endpoints import EndpointRepository

    # Disabled after failing (as after days of failures), so re-enabling it is a change to refuse or allow.
    now = datetime.now(UTC)
    EndpointRepository().mark_failure(org, endpoint, now - timedelta(days=4))
    assert EndpointRepository().disable(org, endpoint, now, "failed for days", now)
    return endpoint


@pytest.fixture(scope="module")
def scene(http_stack: Any) -> Scene:
    """A victim org whose open draft holds usage, and a stranger with a read token of its own."""
    api = Api(http_stack.api_url)
    admin, usage = http_stack.tokens["admin"], http_stack.tokens["usage"]
    victim, stranger = new_org_name("victim"), new_org_name("stranger")
    for org in (victim, stranger):
        put_org(api, admin, org)
    answer = api.call("POST", "/v1/usage", usage, json={"events": [_event(victim)]})
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["results"]
    assert result["status"] == "accepted", result
    endpoint = budget_and_endpoint(api, admin, victim)
    api.close()
    return Scene(victim, result["invoice_id"], {
        "admin": admin, "usage": usage,
        "reader": create_token({f"org:{victim}:read"}),
        "other_org_reader": create_token({f"org:{stranger}:read"}),
    }, endpoint)


def request(api: Api, route: Route, scene: Scene, authorization: str | None) -> Any:
    path = route.path.format(org=scene.victim, invoice=scene.invoice, endpoint=scene.endpoint)
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = route.body
    if body is not None and body.get("events") == "{events}":
        body = {"events": [_event(scene.victim)]}
    return api.call(route.method, path, headers=headers, data=json.dumps(body) if body is not None else None)


def assert_envelope(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)


def test_the_matrix_covers_every_route_of_the_app():
    import app as application
    from chalicelib.api.fallbacks import served_routes

    routes = served_routes(application.app)  # not the 405/404 answers for what no route serves
    covered = {(r.method, r.path.split("?")[0].replace("{invoice}", "{invoice_id}").replace(
        "{endpoint}", "{endpoint_id}")) for r in ROUTES}
    # The API description is public by design; Stripe's webhook is authenticated by its signature (below);
    # the billing page's static files hold no data (the page reads the API with the user's token).
    assert routes - covered == {("GET", "/v1/openapi.json"), ("POST", WEBHOOK), ("GET", "/billing"),
                                ("GET", "/billing/{asset}")}


@pytest.mark.parametrize(("route_name", "who"), CASES, ids=[f"{r}-{w}" for r, w in CASES])
def test_a_request_without_the_right_token_is_refused_and_writes_nothing(route_name, who, http, scene):
    route = next(r for r in ROUTES if r.name == route_name)
    authorization = UNAUTHENTICATED[who] if who in UNAUTHENTICATED else f"Bearer {scene.tokens[who]}"
    with changes_to() as changed:
        response = request(http, route, scene, authorization)
    if who in UNAUTHENTICATED:
        assert_envelope(response, 401, "unauthorized")
        assert response.headers.get("WWW-Authenticate") == "Bearer"
    else:
        assert_envelope(response, 403, "forbidden")
    assert changed == []


@pytest.mark.parametrize("route_name", [r.name for r in ROUTES])
def test_the_same_request_with_the_right_token_goes_through(route_name, http, http_stack):
    """The refusals above are the token's doing: with an allowed token the very same request succeeds
    (each on a victim of its own, since some of these change it)."""
    route = next(r for r in ROUTES if r.name == route_name)
    api_admin, usage = http_stack.tokens["admin"], http_stack.tokens["usage"]
    victim = new_org_name("allowed")
    put_org(http, api_admin, victim)
    seeded = http.call("POST", "/v1/usage", usage, json={"events": [_event(victim)]}).json()["results"][0]
    own = Scene(victim, seeded["invoice_id"], {"admin": api_admin, "usage": usage,
                                               "reader": create_token({f"org:{victim}:read"})},
                budget_and_endpoint(http, api_admin, victim))
    role = "reader" if "reader" in route.allowed else ("usage" if "usage" in route.allowed else "admin")
    with changes_to() as changed:
        response = request(http, route, own, f"Bearer {own.tokens[role]}")
    assert 200 <= response.status_code < 300, (role, response.status_code, response.text)
    if route.method != "GET":
        assert changed, f"{route.name} wrote nothing, so its refusals prove nothing"


# -- Stripe webhooks ---------------------------------------------------------------------------------------


def _sign(payload: str, secret: str, timestamp: int) -> str:
    from devstack.stripe_emulator.webhooks import sign

    return sign(payload, secret, timestamp)


@dataclass
class Paid:
    org: str
    invoice: str
    payload: str


@pytest.fixture
def finalized(http_stack: Any) -> Paid:
    """A finalized invoice, and an `invoice.paid` event for it as Stripe would send it."""
    api = Api(http_stack.api_url)
    admin = http_stack.tokens["admin"]
    org = new_org_name("payer")
    put_org(api, admin, org)
    result = api.call("POST", "/v1/usage", http_stack.tokens["usage"], json={"events": [_event(org)]}).json()
    invoice = result["results"][0]["invoice_id"]
    closed = api.call("POST", f"/v1/orgs/{org}/invoices/{invoice}/finalize", admin)
    assert closed.status_code == 200 and closed.json()["status"] == "finalized", closed.text
    api.close()
    return Paid(org, invoice, stripe_event("invoice.paid", org, invoice, int(time.time())))


def stripe_event(event_type: str, org: str, invoice: str, created: int) -> str:
    """An `invoice.*` event as Stripe sends it, about our invoice (our ids in its metadata)."""
    import stripe

    status = {"invoice.paid": "paid", "invoice.payment_failed": "open"}[event_type]
    return json.dumps({
        "id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "api_version": stripe.api_version,
        "created": created, "livemode": False, "pending_webhooks": 1, "type": event_type,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": {"id": "in_stripe0000000000000001", "object": "invoice", "status": status,
                            "number": "STRIPE-0001", "metadata": {"org": org, "invoice_id": invoice}}},
    })


def deliver(api: Api, payload: str | bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return api.call("POST", WEBHOOK, headers=headers, data=payload)


def invoice_status(api: Api, admin: str, paid: Paid) -> tuple[str, str]:
    body = api.call("GET", f"/v1/orgs/{paid.org}/invoices/{paid.invoice}", admin).json()
    return body["status"], body["payment_status"]


def forged(paid: Paid, secret: str) -> tuple[str | bytes, str | None]:
    return paid.payload, _sign(paid.payload, "whsec_an_attackers_guess", int(time.time()))


def stale(paid: Paid, secret: str) -> tuple[str | bytes, str | None]:
    return paid.payload, _sign(paid.payload, secret, int(time.time()) - 301)  # Stripe's tolerance is 300 s


def unsigned(paid: Paid, secret: str) -> tuple[str | bytes, str | None]:
    return paid.payload, None


def tampered(paid: Paid, secret: str) -> tuple[str | bytes, str | None]:
    signature = _sign(paid.payload, secret, int(time.time()))
    return paid.payload.replace('"invoice.paid"', '"invoice.payment_failed"'), signature


def signature_without_v1(paid: Paid, secret: str) -> tuple[str | bytes, str | None]:
    return paid.payload, f"t={int(time.time())}"


def not_utf8(paid: Paid, secret: str) -> tuple[str | bytes, str | None]:
    body = b"\xff\xfe" + paid.payload.encode()
    return body, _sign(body.decode("latin-1"), secret, int(time.time()))


@pytest.mark.parametrize("attempt", [forged, stale, unsigned, tampered, signature_without_v1, not_utf8],
                         ids=lambda f: f.__name__)
def test_a_webhook_not_signed_recently_with_our_secret_is_refused_and_changes_nothing(attempt, http, http_stack,
                                                                                     finalized):
    payload, signature = attempt(finalized, http_stack.env["STRIPE_WEBHOOK_SECRET"])
    with changes_to() as changed:
        response = deliver(http, payload, signature)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert set(response.json()) == {"error"}, response.text
    assert changed == []
    assert invoice_status(http, http_stack.tokens["admin"], finalized) == ("finalized", "none")


def test_the_same_webhook_event_twice_takes_effect_once(http, http_stack, finalized):
    secret = http_stack.env["STRIPE_WEBHOOK_SECRET"]
    signature = _sign(finalized.payload, secret, int(time.time()))

    first = deliver(http, finalized.payload, signature)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": True, "outcome": "applied"}
    assert invoice_status(http, http_stack.tokens["admin"], finalized) == ("paid", "paid")

    # Stripe redelivers the very same request, then again later with a fresh signature.
    for again in (signature, _sign(finalized.payload, secret, int(time.time()))):
        with changes_to() as changed:
            repeat = deliver(http, finalized.payload, again)
        assert repeat.status_code == 200, repeat.text
        assert repeat.json() == {"received": True, "outcome": "duplicate"}
        assert changed == []


def test_a_payment_failure_delivered_after_the_payment_does_not_mark_a_paid_invoice_failed(http, http_stack,
                                                                                          finalized):
    """Stripe does not deliver events in order and retries a failed delivery for days: the failure of an
    earlier attempt can arrive after `invoice.paid`. It must not undo the payment."""
    secret = http_stack.env["STRIPE_WEBHOOK_SECRET"]
    paid_at = json.loads(finalized.payload)["created"]
    earlier_failure = stripe_event("invoice.payment_failed", finalized.org, finalized.invoice, paid_at - 3600)

    assert deliver(http, finalized.payload, _sign(finalized.payload, secret, int(time.time()))).status_code == 200
    assert invoice_status(http, http_stack.tokens["admin"], finalized) == ("paid", "paid")
    late = deliver(http, earlier_failure, _sign(earlier_failure, secret, int(time.time())))
    assert late.status_code == 200, late.text
    assert invoice_status(http, http_stack.tokens["admin"], finalized) == ("paid", "paid")
