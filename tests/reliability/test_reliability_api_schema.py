"""Bad (and good) input from schemathesis against the served OpenAPI document, as each kind of caller:
never a 5xx, and every answer conforms to the document (status code, content type, body schema, auth)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from reliability_support import Api, create_token, new_org_name, put_org
from schemathesis.config._checks import PositiveDataAcceptanceConfig
from support.scale import sized

from chalicelib.api.openapi import openapi_document

EXAMPLES = sized(reduced=10, full=30)  # per operation and caller: bounded so the module runs in a few minutes

# Loaded when the tests are collected, before any server runs; the first test proves that the API serves
# this very document. (schemathesis's lazy `from_fixture` loader fails under pytest 9.2: it writes
# `Function._nodeid`, which pytest 9.2 no longer has.)
schema = schemathesis.openapi.from_dict(openapi_document())
schema.config.generation.update(
    max_examples=EXAMPLES, modes=["positive", "negative"],
    # An unknown query parameter is ignored, as most APIs do and as OpenAPI cannot forbid; without this,
    # schemathesis counts `?x=1` as invalid input that had to be refused.
    allow_extra_parameters=False,
)
# 422 is how the API refuses well-formed input that a business rule the document cannot express turns
# down: a timestamp outside the late-usage window, an unknown org or meter, a cursor it did not issue.
# 400 is the Stripe webhook refusing a signature that does not verify, which no document can describe.
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=["2xx", "400", "401", "403", "404", "409", "422"])
# Undeclared methods: the API answers 405 in the envelope with an Allow header, and OPTIONS 204 with Allow (so
# it is not "unexpected"). `chalice local`'s HTTP server itself has no TRACE or QUERY (501, an HTML page), and
# sends a body with HEAD, which would break the connection for the next request.
schema.config.phases.coverage.unexpected_methods = {"get", "put", "post", "delete", "patch"}

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


class Known:
    """An org that exists, with a draft invoice, and the three kinds of caller."""

    def __init__(self, stack: Any) -> None:
        self.org = new_org_name("fuzzed")
        api = Api(stack.api_url)
        put_org(api, stack.tokens["admin"], self.org)
        event = {"id": "seed-1", "org": self.org, "app": "web", "meter": "egress", "quantity": "3",
                 "region": "iad", "timestamp": datetime.now(UTC).isoformat()}
        answer = api.call("POST", "/v1/usage", stack.tokens["usage"], json={"events": [event]}).json()
        self.invoice = answer["results"][0]["invoice_id"]
        api.close()
        self.tokens = {**stack.tokens, "reader": create_token({f"org:{self.org}:read"})}


@pytest.fixture(scope="module")
def known(http_stack: Any) -> Known:
    return Known(http_stack)


def test_the_api_serves_the_document_that_is_fuzzed(http):
    served = http.call("GET", "/v1/openapi.json")
    assert served.status_code == 200
    assert served.json() == openapi_document()


def _positive(case: Any, location: str) -> bool:
    """Whether this part of the request was generated valid (steering a part meant to be invalid would
    make it valid, and the answer would then be judged against the wrong expectation)."""
    from schemathesis.generation import GenerationMode

    meta = case.meta
    if meta is None:
        return False
    component = next((info for where, info in meta.components.items() if str(where.value) == location), None)
    return component is not None and component.mode is GenerationMode.POSITIVE


def steer(case: Any, data: Any, known: Known) -> None:
    """Half the time, aim a valid part of the generated request at the org and invoice that exist, so the
    fuzzing reaches past the 404s into reads, writes and the state machine (finalize, void, items)."""
    if "org" in (case.path_parameters or {}) and _positive(case, "path") and data.draw(st.booleans()):
        case.path_parameters["org"] = known.org
        if "invoice_id" in case.path_parameters and data.draw(st.booleans()):
            case.path_parameters["invoice_id"] = known.invoice
    if case.query and "org" in case.query and _positive(case, "query") and data.draw(st.booleans()):
        case.query["org"] = known.org
    events = case.body.get("events") if isinstance(case.body, dict) else None
    if isinstance(events, list) and _positive(case, "body") and data.draw(st.booleans()):
        for event in events:
            if isinstance(event, dict):
                event.update(org=known.org, timestamp=datetime.now(UTC).isoformat())


def call(case: Any, data: Any, stack: Any, known: Known, caller: str) -> None:
    steer(case, data, known)
    case.call_and_validate(base_url=stack.api_url, headers={"Authorization": f"Bearer {known.tokens[caller]}"},
                           timeout=60)


@schema.parametrize()
@schema.given(data=st.data())
@FUZZ_SETTINGS
def test_as_the_admin_no_input_gets_a_5xx_or_an_answer_outside_the_document(case, data, http_stack, known):
    call(case, data, http_stack, known, "admin")


@schema.parametrize()
@schema.given(data=st.data())
@FUZZ_SETTINGS
def test_as_the_usage_writer_no_input_gets_a_5xx_or_an_answer_outside_the_document(case, data, http_stack, known):
    call(case, data, http_stack, known, "usage")


@schema.parametrize()
@schema.given(data=st.data())
@FUZZ_SETTINGS
def test_as_an_org_reader_no_input_gets_a_5xx_or_an_answer_outside_the_document(case, data, http_stack, known):
    call(case, data, http_stack, known, "reader")
