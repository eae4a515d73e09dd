"""Hostile requests to every route, in process on DynamoDB Local: wrong methods, unknown paths, odd media types,
query parameters and path ids that are not what they seem, text fields with control characters. The answer
is below 500, every error is in the one envelope, and what is refused leaves the table as it was."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hostile_support import NOV, Hostile, headers, own_table, refused, unchanged

from chalicelib.api.openapi import openapi_document

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="module")
def hostile(local_aws: Any, tokens: dict[str, str]) -> Iterator[Hostile]:
    with own_table(local_aws, tokens) as context:
        from chalice.test import Client

        import app as application

        with Client(application.app) as client:
            seeded = client.http.post("/v1/usage", headers=headers(tokens["usage"]), body=json.dumps({"events": [
                {"id": "seed", "org": context.org, "app": "web", "meter": "egress", "quantity": "1", "region": "iad",
                 "timestamp": "2026-11-15T11:00:00Z"}]}))
            assert seeded.status_code == 200, seeded.body
        yield context


def documented() -> list[tuple[str, set[str]]]:
    return [(path, {method.upper() for method in ops}) for path, ops in openapi_document()["paths"].items()]


def concrete(path: str, org: str) -> str:
    return path.replace("{org}", org).replace("{invoice_id}", NOV)


@pytest.mark.parametrize(("path", "allowed"), documented(), ids=[path for path, _ in documented()])
def test_every_method_a_route_does_not_serve_is_405_in_the_envelope_with_allow(api, hostile, path, allowed):
    with unchanged(hostile):
        for method in sorted(set(METHODS) - allowed):
            response = api.http.request(method, concrete(path, hostile.org), headers=headers(hostile.tokens["admin"]),
                                        body=b'{"events": []}')
            error = refused(response, 405, "method_not_allowed")
            allow = {m.strip() for m in response.headers["Allow"].split(",")}
            assert allow == allowed | {"OPTIONS"}, (method, path, allow)
            assert set(error["details"]["allowed"]) == allow


@pytest.mark.parametrize(("path", "allowed"), documented(), ids=[path for path, _ in documented()])
def test_options_names_the_methods_a_route_serves(api, hostile, path, allowed):
    with unchanged(hostile):
        response = api.http.request("OPTIONS", concrete(path, hostile.org), headers={})
    assert response.status_code == 204, response.body
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed | {"OPTIONS"}


UNKNOWN_PATHS = [
    "/", "/v1", "/v1/", "/v2/usage", "/v1/orgs", "/v1/usage/extra", "/v1/orgs/{org}/invoices/{inv}/lines",
    "/v1/orgs/{org}/invoices/{inv}/finalize/now", "/v1/reports", "/v1/reports/monthly-totals/2026",
    "/v1/stripe", "/v1/stripe/webhook/x", "/a/b/c/d/e/f/g/h", "/a/b/c/d/e/f/g/h/i/j/k/l", "/V1/usage",
    "/v1/openapi.yaml", "/.env", "/v1/orgs/{org}/invoices/upcoming/lines", "/" + "x" * 4000,
]


@pytest.mark.parametrize("path", UNKNOWN_PATHS, ids=lambda p: p[:40])
def test_an_unknown_path_is_404_in_the_envelope_whatever_the_method(api, hostile, path):
    with unchanged(hostile):
        for method in (*METHODS, "OPTIONS"):
            for auth in (headers(hostile.tokens["admin"]), {}):
                response = api.http.request(method, path.replace("{org}", hostile.org).replace("{inv}", NOV),
                                            headers=auth, body=b"{}")
                refused(response, 404, "not_found")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml", "multipart/form-data; boundary=x"])
def test_a_read_ignores_the_media_type_it_was_not_sent_a_body_in(api, hostile, content_type):
    for path in (f"/v1/orgs/{hostile.org}", f"/v1/orgs/{hostile.org}/invoices",
                 f"/v1/orgs/{hostile.org}/invoices/upcoming", f"/v1/orgs/{hostile.org}/invoices/{NOV}",
                 "/v1/reports/monthly-totals?from=2026-01&to=2026-12", "/v1/openapi.json"):
        response = api.http.get(path, headers=headers(hostile.tokens["admin"], content_type))
        assert response.status_code == 200, (path, response.status_code, response.body[:300])


def test_an_unexpected_failure_is_a_500_in_the_envelope_without_its_details(api, hostile, monkeypatch):
    from chalicelib.api import routes_billing

    def broken(*args: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(routes_billing, "monthly_report", broken)
    response = api.http.get("/v1/reports/monthly-totals?from=2026-01&to=2026-02",
                            headers=headers(hostile.tokens["admin"]))
    assert response.status_code == 500
    body = response.json_body
    assert set(body) == {"error"} and body["error"]["code"] == "internal_error", body
    assert "secret" not in response.body.decode()


# ---- query parameters and path ids that only look right ----

OTHER_DIGIT_LIMITS = ["٣", "１０", "²", "१", "𝟓"]


@pytest.mark.parametrize("limit", [*OTHER_DIGIT_LIMITS, "1" * 5000, "1\n", "+1", " 1", "1 ", "0x1", "1e1", "01.0",
                                   "-0", "1%00"])
def test_a_page_size_in_anything_but_ascii_digits_is_refused(api, hostile, limit):
    from urllib.parse import quote

    response = api.http.get(f"/v1/orgs/{hostile.org}/invoices?limit={quote(limit, safe='%')}",
                            headers=headers(hostile.tokens["admin"]))
    refused(response, 422, "validation_failed")


def encoded(payload: str | bytes) -> str:
    raw = payload.encode() if isinstance(payload, str) else payload
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize("cursor", [
    "x" * 10_000, encoded("[" * 100_000), encoded('{"after": ' * 5_000 + '"a"' + "}" * 5_000),
    encoded(json.dumps({"after": "inv_202611\n"})), encoded(json.dumps({"after": "inv_２０２６11"})),
    "é", "%F0%9F%92%A9", encoded("1" + "0" * 5000),
    encoded(b'{"after": "\xed\xa0\x80"}'),
], ids=["long", "deep array", "deep object", "newline", "other digits", "non-ascii", "emoji",
        "huge number", "encoded surrogate"])
def test_a_cursor_this_api_did_not_issue_is_refused(api, hostile, cursor):
    response = api.http.get(f"/v1/orgs/{hostile.org}/invoices?cursor={cursor}",
                            headers=headers(hostile.tokens["admin"]))
    refused(response, 422)


@pytest.mark.parametrize("query", [
    "from=２０２６-01&to=2026-02", "from=2026-01&to=2026-٠2", "from=2026-01%0A&to=2026-02",
    "from=2026-01&to=2026-02%0A", "from=%202026-01&to=2026-02", "from=+2026-01&to=2026-02",
    "from=2026-01&to=" + "9" * 5000 + "-01"])
def test_a_report_month_in_anything_but_ascii_digits_is_refused(api, hostile, query):
    response = api.http.get(f"/v1/reports/monthly-totals?{query}", headers=headers(hostile.tokens["admin"]))
    refused(response, 422)


# (a trailing newline is stripped by the URL parsing of the local gateway itself; tests/unit covers it)
@pytest.mark.parametrize("suffix", ["\x00", "\u200b", "\u202e", " ", "\x1b"])
def test_a_path_org_with_a_trailing_control_character_is_no_org(api, hostile, suffix):
    name = f"{hostile.org}-new"
    body = json.dumps({"name": "Acme", "email": "billing@acme.example"})
    with unchanged(hostile):
        refused(api.http.put(f"/v1/orgs/{name}{suffix}", headers=headers(hostile.tokens["admin"]), body=body), 404)
        refused(api.http.get(f"/v1/orgs/{hostile.org}{suffix}", headers=headers(hostile.tokens["admin"])), 404)
        for action in ("finalize", "void", "items"):
            refused(api.http.post(f"/v1/orgs/{hostile.org}/invoices/{NOV}{suffix}/{action}",
                                  headers=headers(hostile.tokens["admin"]), body=b"{}"), 404)
        refused(api.http.get(f"/v1/reports/monthly-totals?from=2026-01&to=2026-02&org={hostile.org}{suffix}",
                             headers=headers(hostile.tokens["admin"])), 404)


# ---- text a person reads: names, descriptions, emails ----

UNPRINTABLE = ["Acme\x00", "Ac\x07me", "Ac\u202eme", "\u200bAcme", "Acme\ufeff", "Ac\ud800me", "Ac\u2028me",
               "\x1b[2JAcme", "Ac\u2066me", "Ac\u200eme", "Acme\U000e0041", "Ac\ue000me", "Ac\U0010ffffme",
               "Ac\u0378me"]
PRINTABLE = ["Acme GmbH & Co. KG", "می\u200cخواهم", "Ærø ÅS", "株式会社アクメ", "👩\u200d💻 Labs", "Ac\u0301me",
             "O'Brien"]


@pytest.mark.parametrize("name", UNPRINTABLE, ids=ascii)
def test_a_billing_profile_name_with_control_or_invisible_characters_is_refused(api, hostile, name):
    body = json.dumps({"name": name, "email": "billing@acme.example"})
    with unchanged(hostile):
        refused(api.http.put(f"/v1/orgs/{hostile.org}", headers=headers(hostile.tokens["admin"]), body=body), 422,
                "validation_failed")


@pytest.mark.parametrize("name", PRINTABLE, ids=ascii)
def test_a_billing_profile_name_in_any_script_is_kept_as_written(api, hostile, name):
    body = json.dumps({"name": name, "email": "billing@acme.example"})
    response = api.http.put(f"/v1/orgs/{hostile.org}", headers=headers(hostile.tokens["admin"]), body=body)
    assert response.status_code == 200, response.body
    assert api.http.get(f"/v1/orgs/{hostile.org}", headers=headers(hostile.tokens["admin"])).json_body["name"] == name


@pytest.mark.parametrize("email", ["a@b\x00.example", "ä@acme.example", "a@äcme.example", "a b@acme.example",
                                   "a@acme.example\n", "a@acme", "@acme.example", "a@.example", "a@acme..example",
                                   "a@acme.example.", "a\u200b@acme.example", "a@@acme.example", "a" * 250 + "@x.io"],
                         ids=ascii)
def test_an_email_stripe_would_refuse_is_refused_here(api, hostile, email):
    body = json.dumps({"name": "Acme", "email": email})
    with unchanged(hostile):
        refused(api.http.put(f"/v1/orgs/{hostile.org}", headers=headers(hostile.tokens["admin"]), body=body), 422,
                "validation_failed")


ITEM = {"client_id": "item-1", "kind": "charge", "amount_cents": 500, "description": "setup fee"}


@pytest.mark.parametrize(("field", "value"), [
    *[("description", text) for text in UNPRINTABLE], ("client_id", "item-1\n"), ("client_id", "item\u200b1"),
    ("amount_cents", "٥٠٠"), ("amount_cents", "500"), ("amount_cents", None), ("kind", "charge\n"),
    ("kind", "CHARGE"), ("amount_cents", [500]), ("amount_cents", {"cents": 500})], ids=ascii)
def test_an_invoice_item_with_a_bad_field_is_refused(api, hostile, field, value):
    body = json.dumps({**ITEM, field: value})
    with unchanged(hostile):
        refused(api.http.post(f"/v1/orgs/{hostile.org}/invoices/{NOV}/items", headers=headers(hostile.tokens["admin"]),
                              body=body), 422, "validation_failed")


@pytest.mark.parametrize("literal", ["500.0", "5e2", "1" + "0" * 5000, "-0", "1e400"])
def test_an_amount_that_is_not_a_json_integer_is_refused(api, hostile, literal):
    body = json.dumps(ITEM).replace('"amount_cents": 500', f'"amount_cents": {literal}')
    with unchanged(hostile):
        refused(api.http.post(f"/v1/orgs/{hostile.org}/invoices/{NOV}/items", headers=headers(hostile.tokens["admin"]),
                              body=body), 422, "validation_failed")


@pytest.mark.parametrize("path", ["/v1/orgs/{org}", "/v1/orgs/{org}/invoices/{inv}/items"])
@pytest.mark.parametrize("body", ['{"a": ' * 1000 + "1" + "}" * 1000, "[" * 50_000, '{"name": "A", "name": "B"}',
                                  "x" * 1_000_001], ids=["deep", "deeper", "duplicate key", "too large"])
def test_the_other_json_routes_refuse_deep_duplicate_and_oversized_bodies(api, hostile, path, body):
    with unchanged(hostile):
        response = api.http.request("PUT" if path.endswith("{org}") else "POST",
                                    path.replace("{org}", hostile.org).replace("{inv}", NOV),
                                    headers=headers(hostile.tokens["admin"]), body=body)
        refused(response, 413 if len(body) > 1_000_000 else 400)

