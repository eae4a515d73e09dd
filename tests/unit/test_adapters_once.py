"""Adapters are built once per process: a warm Lambda reuses the Stripe client across SQS batches, and every
table model one DynamoDB client."""

from __future__ import annotations

from chalicelib.stripe.gateway import gateway_for


def test_the_same_key_and_address_get_the_same_gateway_and_client():
    first = gateway_for("sk_test_once", "http://127.0.0.1:1", 2)
    again = gateway_for("sk_test_once", "http://127.0.0.1:1", 2)
    assert again is first and again.client is first.client


def test_another_key_or_address_gets_its_own_gateway():
    first = gateway_for("sk_test_once", "http://127.0.0.1:1", 2)
    assert gateway_for("sk_test_other", "http://127.0.0.1:1", 2) is not first
    assert gateway_for("sk_test_once", "http://127.0.0.1:2", 2) is not first


def _rebinding(monkeypatch):
    """Bind the models for a test, and put back the binding the rest of the run uses."""
    from chalicelib.storage import models

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")  # so building a client looks for no real credentials
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    saved = (models._Meta.table_name, models._Meta.host, models._Meta.region)
    return models, lambda: models.bind(*saved)


def test_every_table_model_shares_one_client_even_when_threads_race_to_build_it(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    models, restore = _rebinding(monkeypatch)
    try:
        models.bind("t", "http://127.0.0.1:1", "us-east-1")
        every = models.every_model()
        assert len(every) > 10
        with ThreadPoolExecutor(8) as pool:
            clients = list(pool.map(lambda m: m._get_connection().connection.client, every * 2))
        assert len({id(c) for c in clients}) == 1
        assert clients[0].meta.endpoint_url == "http://127.0.0.1:1"
    finally:
        restore()


def test_binding_another_endpoint_gets_a_new_shared_client(monkeypatch):
    models, restore = _rebinding(monkeypatch)
    try:
        models.bind("t", "http://127.0.0.1:1", "us-east-1")
        first = models.OrgItem._get_connection().connection.client
        models.bind("t", "http://127.0.0.1:2", "us-east-1")
        second = models.OrgItem._get_connection().connection.client
        assert second is not first and second.meta.endpoint_url == "http://127.0.0.1:2"
        assert models.InvoiceItem._get_connection().connection.client is second
    finally:
        restore()


def test_binding_again_builds_the_client_without_reading_the_service_description_again(monkeypatch):
    """A process bound again (a local stack, a test on a table of its own) builds its client from the one
    session, whose loader read botocore's service description the first time."""
    from botocore.loaders import JSONFileLoader

    models, restore = _rebinding(monkeypatch)
    try:
        models.bind("t", "http://127.0.0.1:1", "us-east-1")
        models.OrgItem._get_connection()
        read: list[str] = []
        original = JSONFileLoader.load_file

        def counted(self, file_path):
            read.append(file_path)
            return original(self, file_path)

        monkeypatch.setattr(JSONFileLoader, "load_file", counted)
        models.bind("u", "http://127.0.0.1:1", "us-east-1")
        rebuilt = models.OrgItem._get_connection().connection.client
        assert rebuilt.meta.endpoint_url == "http://127.0.0.1:1"
        assert read == []
    finally:
        restore()
