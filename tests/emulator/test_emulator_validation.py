"""Requests the live API refuses are refused here too."""

from __future__ import annotations

import pytest
import requests
import stripe

from devstack.stripe_emulator import params as typed_params


def test_unknown_parameter_is_refused_and_nothing_is_created(client, emulator, customer):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.create(params={"customer": customer.id, "tax_percent": 20})
    err = excinfo.value
    assert err.http_status == 400 and err.code == "parameter_unknown"
    assert err.param == "tax_percent"
    assert err.json_body["error"]["type"] == "invalid_request_error"
    assert emulator.state()["invoices"] == []


def test_unknown_nested_parameter_is_refused(client, draft):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.add_lines(draft.id, params={
            "lines": [{"amount": 1}, {"amount": 2, "currency": "usd"}]})
    assert excinfo.value.param == "lines[1][currency]"
    assert client.v1.invoices.retrieve(draft.id).lines.total_count == 0


def test_missing_and_malformed_parameters(client, draft):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.add_lines(draft.id, params={"invoice_metadata": {"a": "b"}})
    assert excinfo.value.code == "parameter_missing" and excinfo.value.param == "lines"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.add_lines(draft.id, params={"lines": [{"amount": "ten"}]})
    assert excinfo.value.code == "parameter_invalid_integer"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.create(params={})
    assert excinfo.value.param == "customer"


def test_allowed_keys_come_from_stripe_python_typed_params():
    keys, required = typed_params.allowed_keys(stripe.params.InvoiceAddLinesParams)
    assert keys == {"expand", "invoice_metadata", "lines"} and required == {"lines"}
    keys, _ = typed_params.allowed_keys(stripe.params.InvoiceCreateParams)
    assert {"customer", "auto_advance", "pending_invoice_items_behavior"} <= keys
    assert not keys & typed_params.REQUEST_OPTION_KEYS


@pytest.mark.parametrize("metadata, param", [
    ({f"k{i}": "v" for i in range(51)}, "metadata"),
    ({"k" * 41: "v"}, "metadata[" + "k" * 41 + "]"),
    ({"k": "v" * 501}, "metadata[k]"),
])
def test_metadata_limits(client, emulator, metadata, param):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.customers.create(params={"metadata": metadata})
    assert excinfo.value.http_status == 400 and excinfo.value.param == param
    assert emulator.state()["customers"] == []


def test_metadata_at_the_limits_is_accepted(client, customer, draft):
    metadata = {f"k{i:02d}" + "x" * 37: "v" * 500 for i in range(50)}
    created = client.v1.invoices.create(params={"customer": customer.id,
                                                "metadata": metadata})
    assert created.metadata.to_dict() == metadata
    # Merging invoice_metadata past 50 keys is refused as a whole.
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.add_lines(created.id, params={
            "lines": [{"amount": 1}], "invoice_metadata": {"one_more": "x"}})
    assert client.v1.invoices.retrieve(created.id).lines.total_count == 0
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.invoices.add_lines(draft.id, params={
            "lines": [{"amount": 1, "metadata": {"v": "x" * 501}}]})
    assert excinfo.value.param == "lines[0][metadata][v]"


def test_metadata_round_trips_verbatim(client, customer):
    metadata = {"_source": "usage-sync", "usage_id": "u-1", "0": "digit key"}
    invoice = client.v1.invoices.create(params={"customer": customer.id, "metadata": metadata})
    assert client.v1.invoices.retrieve(invoice.id).metadata.to_dict() == metadata
    updated = client.v1.invoices.add_lines(invoice.id, params={
        "lines": [{"amount": 1}], "invoice_metadata": {"usage_id": "", "batch": "7"}})
    assert updated.metadata.to_dict() == {"_source": "usage-sync", "0": "digit key",
                                          "batch": "7"}


def test_authentication_is_required(make_client, emulator):
    with pytest.raises(stripe.AuthenticationError) as excinfo:
        make_client(api_key="sk_live_notallowed").v1.customers.list()
    assert excinfo.value.http_status == 401
    response = requests.get(f"{emulator.base_url}/v1/customers", timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.slow  # its own emulator: the keys are set at construction
def test_configured_key_is_accepted():
    from devstack.stripe_emulator import StripeEmulator
    with StripeEmulator(api_keys=["rk_local_ci"]) as emu:
        client = stripe.StripeClient("rk_local_ci", base_addresses={"api": emu.base_url})
        assert client.v1.customers.list().data == []


def test_unrecognized_url_is_a_404(emulator):
    response = requests.get(f"{emulator.base_url}/v1/charges_nope",
                            headers={"Authorization": "Bearer sk_test_x"}, timeout=5)
    assert response.status_code == 404
    assert "Unrecognized request URL" in response.json()["error"]["message"]
