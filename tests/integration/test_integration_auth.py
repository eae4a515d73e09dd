"""Every request is authenticated and scoped; refused requests write nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from acceptance_support import assert_error, bearer, post_usage, usage_event

NOV = "inv_202611"


def endpoints(org: str, hook: str = "we_auth") -> list[tuple[str, str, Any]]:
    """(method, path, body) for every route of the app, aimed at `org`, its November invoice and webhook
    endpoint `hook`."""
    item = {"client_id": "auth-item", "kind": "charge", "amount_cents": 500, "description": "setup fee"}
    hooks = f"/v1/orgs/{org}/webhook-endpoints"
    return [
        ("PUT", f"/v1/orgs/{org}", {"name": "Renamed", "email": "new@example.com"}),
        ("GET", f"/v1/orgs/{org}", None),
        ("POST", "/v1/usage", {"events": [usage_event(org, "auth-event", quantity="5")]}),
        ("GET", f"/v1/orgs/{org}/invoices", None),
        ("GET", f"/v1/orgs/{org}/invoices/upcoming", None),
        ("GET", f"/v1/orgs/{org}/invoices/{NOV}", None),
        ("POST", f"/v1/orgs/{org}/invoices/{NOV}/items", item),
        ("POST", f"/v1/orgs/{org}/invoices/{NOV}/finalize", None),
        ("POST", f"/v1/orgs/{org}/invoices/{NOV}/void", None),
        ("GET", "/v1/reports/monthly-totals?from=2026-01&to=2026-12", None),
        ("GET", f"/v1/reports/monthly-totals?from=2026-01&to=2026-12&org={org}", None),
        ("GET", f"/v1/orgs/{org}/usage?from=2026-11-01&to=2026-12-01&group_by=app", None),
        ("PUT", f"/v1/orgs/{org}/budget", {"amount_cents": 5000}),
        ("GET", f"/v1/orgs/{org}/budget", None),
        ("GET", f"/v1/orgs/{org}/alerts", None),
        ("POST", hooks, {"url": "https://hooks.example.com/x", "event_types": ["invoice.synced"]}),
        ("GET", hooks, None),
        ("DELETE", f"{hooks}/{hook}", None),
        ("POST", f"{hooks}/{hook}/enable", None),
        ("GET", f"{hooks}/{hook}/deliveries", None),
    ]


WRITES = {"PUT", "POST", "DELETE"}


def call(api: Any, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    payload = json.dumps(body) if body is not None else None
    return api.http.request(method, path, headers=headers, body=payload or b"")


@pytest.fixture
def billed_org(api, org, tokens, pinned_clock) -> str:
    """An org whose November draft already holds usage."""
    response = post_usage(api, tokens["usage"], [usage_event(org, "setup-1", quantity="10")])
    assert response.status_code == 200, response.body
    return org


@pytest.fixture
def hook(billed_org) -> str:
    """The billed org's budget and webhook endpoint (its id), so their reads have something to answer."""
    from datetime import UTC, datetime

    from chalicelib.domain.budgets import Threshold
    from chalicelib.domain.notifications import EventType
    from chalicelib.services.budgets import set_budget
    from chalicelib.services.endpoints import register_endpoint

    set_budget(billed_org, 5000, "usd", [Threshold(percent=80)], datetime.now(UTC))
    endpoint, _ = register_endpoint(billed_org, "https://hooks.example.com/x", [EventType.INVOICE_SYNCED],
                                    datetime.now(UTC), local_stage=True)
    return endpoint.id


def snapshot(store: Any, org: str) -> tuple[Any, ...]:
    from chalicelib.storage.orgs import OrgRepository

    return store.invoices(org), OrgRepository().get(org), store.dedup_exists(org, "auth-event")


def test_every_route_of_the_app_is_covered_here(org):
    import app as application

    covered = {(method, path.split("?")[0].replace(org, "{org}").replace(NOV, "{invoice_id}").replace(
        "we_auth", "{endpoint_id}")) for method, path, _ in endpoints(org)}
    from chalicelib.api.fallbacks import served_routes

    routes = served_routes(application.app)  # not the 405/404 answers for what no route serves
    # The API description is public; Stripe's webhook is authenticated by Stripe's signature instead;
    # the billing page's static files hold no data (the page reads the API with the user's token).
    public = {("GET", "/v1/openapi.json"), ("POST", "/v1/stripe/webhook"), ("GET", "/billing"),
              ("GET", "/billing/{asset}")}
    assert routes - public == covered


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer ",
                                           "Bearer " + "x" * 500, "test-admin-token"])
def test_a_request_without_a_valid_bearer_token_is_refused_with_401_and_writes_nothing(
        api, billed_org, store, authorization):
    before = snapshot(store, billed_org)
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    for method, path, body in endpoints(billed_org):
        response = call(api, method, path, body, headers)
        assert_error(response, 401, "unauthorized")
        assert response.headers.get("WWW-Authenticate") == "Bearer", (method, path)
    assert snapshot(store, billed_org) == before


def test_the_usage_token_may_only_post_usage(api, billed_org, tokens, store):
    before = snapshot(store, billed_org)
    for method, path, body in endpoints(billed_org):
        if path == "/v1/usage":
            continue
        response = call(api, method, path, body, bearer(tokens["usage"]))
        assert_error(response, 403, "forbidden")
    assert snapshot(store, billed_org) == before


def test_a_read_only_token_reads_its_own_org(api, billed_org, hook, reader_token):
    reads = [(m, p, b) for m, p, b in endpoints(billed_org, hook)
             if m == "GET" and not p.endswith("from=2026-01&to=2026-12")]
    for method, path, body in reads:
        response = call(api, method, path, body, bearer(reader_token))
        assert response.status_code == 200, (path, response.body)
    listed = call(api, "GET", f"/v1/orgs/{billed_org}/invoices", None, bearer(reader_token)).json_body
    assert [invoice["id"] for invoice in listed["invoices"]] == [NOV]


def test_a_read_only_token_cannot_write_even_to_its_own_org(api, billed_org, reader_token, store):
    before = snapshot(store, billed_org)
    for method, path, body in endpoints(billed_org):
        if method in WRITES:
            response = call(api, method, path, body, bearer(reader_token))
            assert_error(response, 403, "forbidden")
    assert snapshot(store, billed_org) == before


def test_a_read_only_token_cannot_read_another_org(api, billed_org, reader_token, make_org, tokens, store):
    other = make_org()
    post_usage(api, tokens["usage"], [usage_event(other, "other-1", quantity="3")])
    before = snapshot(store, other)
    for method, path, body in endpoints(other):
        response = call(api, method, path, body, bearer(reader_token))
        assert_error(response, 403, "forbidden")
    assert snapshot(store, other) == before


def test_finance_totals_across_all_orgs_need_the_admin_token(api, billed_org, reader_token, tokens):
    path = "/v1/reports/monthly-totals?from=2026-01&to=2026-12"
    assert_error(call(api, "GET", path, None, bearer(reader_token)), 403, "forbidden")
    assert call(api, "GET", path, None, bearer(tokens["admin"])).status_code == 200


def test_the_api_description_is_public(api):
    response = api.http.get("/v1/openapi.json")
    assert response.status_code == 200
    assert "/v1/usage" in response.json_body["paths"]
