"""The served OpenAPI document is valid 3.1, describes every route the app serves, and matches what it answers."""

from datetime import UTC, datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

import app as application
from chalicelib.api.fallbacks import served_routes
from chalicelib.api.openapi import openapi_document
from chalicelib.api.schemas import invoice_json, org_json
from chalicelib.domain.invoice import Invoice, InvoiceStatus
from chalicelib.domain.orgs import OrgProfile
from chalicelib.domain.periods import Period

NOW = datetime(2026, 11, 3, 12, 30, tzinfo=UTC)


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    paths = openapi_document()["paths"]
    return [(method.upper(), path, op) for path, ops in paths.items() for method, op in ops.items()]


def validator(component: str) -> Draft202012Validator:
    """Validates against one component, its `$ref`s resolved within the document."""
    root = {"$ref": f"#/components/schemas/{component}", "components": openapi_document()["components"]}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_the_document_is_valid_openapi_3_1():
    # pydantic writes JSON Schema 2020-12 (`"type": "null"`, numeric `exclusiveMinimum`): OpenAPI 3.1's dialect.
    assert openapi_document()["openapi"].startswith("3.1.")
    assert list(OpenAPIV31SpecValidator(openapi_document()).iter_errors()) == []


def test_every_route_the_app_serves_is_described_and_nothing_else():
    served = served_routes(application.app)
    assert {(method, path) for method, path, _ in operations()} == served


def test_only_the_document_and_stripes_webhook_go_without_a_bearer_token():
    public = {(method, path) for method, path, op in operations() if op.get("security") == []}
    billing_page = {("GET", "/billing"), ("GET", "/billing/{asset}")}  # static files; the page reads with a token
    assert public == {("GET", "/v1/openapi.json"), ("POST", "/v1/stripe/webhook"), *billing_page}


@pytest.mark.parametrize(("method", "path"), [
    (method, path) for method, path, op in operations() if "requestBody" in op and op.get("security") != []])
def test_a_route_that_reads_json_documents_the_refusals_of_a_bad_body(method, path):
    op = openapi_document()["paths"][path][method.lower()]
    assert {"400", "413", "415", "422"} <= set(op["responses"])


def test_an_invoice_as_the_api_writes_it_matches_its_schema():
    invoice = Invoice("acme", "inv_202611", "ACME-202611", Period(2026, 11), InvoiceStatus.FINALIZED, "usd", NOW,
                      NOW, subtotal_cents=1234, total_cents=1234, finalized_at=NOW, due_at=NOW)
    assert list(validator("Invoice").iter_errors(invoice_json(invoice))) == []


def test_an_org_profile_as_the_api_writes_it_matches_its_schema():
    profile = OrgProfile("acme", "Acme", "billing@acme.test", "usd", NOW, NOW, 1)
    assert list(validator("OrgProfile").iter_errors(org_json(profile))) == []


def test_the_response_schemas_catch_a_wrong_type():
    assert list(validator("Money").iter_errors({"cents": "12", "display": "$0.12"})) != []
