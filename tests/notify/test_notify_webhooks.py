"""Customers' webhooks: at least once through an outage, dedup by id, signatures the README's snippet checks,
no SSRF, endpoints that fail for days disabled, and the endpoint API."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from notify_support import create_org, register, wait_for

ROOT = Path(__file__).resolve().parents[2]


def publish(org: str, count: int, tag: str) -> set[str]:
    """`count` events stored as the stream handler stores them; the stream fans them out."""
    from chalicelib.domain.notifications import CustomerEvent, EventType, event_id
    from chalicelib.services.notifications import publish_all

    now = datetime.now(UTC)
    events = [CustomerEvent(event_id(org, tag, str(i)), EventType.INVOICE_SYNCED, org, now, {"n": i})
              for i in range(count)]
    assert publish_all(events) == count
    return {event.id for event in events}


def deliveries(org: str, endpoint_id: str) -> dict[str, Any]:
    from chalicelib.storage.endpoints import DeliveryRepository

    return {d.event_id: d for d in DeliveryRepository().log(org, endpoint_id, limit=100)}


def endpoint(org: str, endpoint_id: str) -> Any:
    from chalicelib.storage.endpoints import EndpointRepository

    return EndpointRepository().get(org, endpoint_id)


def poll(stack: Any) -> None:
    stack.runner.poll_once(sqs_wait_seconds=1)  # blocks up to a second on the queues: the wait's step


def test_a_receiver_down_for_a_while_gets_every_event_once_it_is_back(stack, receiver):
    org = create_org("outage")
    hook, receiver.secret = register(org, receiver.url)
    receiver.down()
    expected = publish(org, 5, "outage")

    # While it is down, every event is tried and retried (1 s apart here; 30 s, 2 min, ... in production).
    wait_for(lambda: len(deliveries(org, hook.id)) == 5 and
             all(d.attempts >= 2 for d in deliveries(org, hook.id).values()), 60, lambda: poll(stack),
             "two failed attempts of every event")
    assert {d.status.value for d in deliveries(org, hook.id).values()} == {"retrying"}
    assert endpoint(org, hook.id).failing_since is not None

    receiver.up()
    wait_for(lambda: receiver.event_ids() >= expected, 60, lambda: poll(stack), "every event to arrive")
    stack.runner.run_until_idle(30)

    assert receiver.event_ids() == expected  # each event id once, after dedup by id
    assert all(r.verified for r in receiver.received)
    log = deliveries(org, hook.id)
    assert {d.status.value for d in log.values()} == {"delivered"}
    assert all(d.attempts >= 3 and d.last_status_code == 200 and d.last_latency_ms is not None for d in log.values())
    healthy = endpoint(org, hook.id)
    assert healthy.failing_since is None and healthy.last_success_at is not None

    # A duplicate message (SQS delivers at least once) finds the event delivered and sends nothing.
    from chalicelib.services.deliveries import DeliveryJob, enqueue_jobs

    first = sorted(expected)[0]
    enqueue_jobs([DeliveryJob(org, hook.id, first, log[first].event_created)] * 2)
    before = len(receiver.received)
    stack.runner.run_until_idle(30)
    assert len(receiver.received) == before


def documented_verifier() -> Any:
    """The verification snippet exactly as the README shows it to customers."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- webhook-verification -->\s*```python\n(.*?)```", readme, re.S)
    assert match, "README has no verification snippet"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), "README.md", "exec"), namespace)
    return namespace["verify_webhook"]


def test_the_documented_snippet_accepts_our_signature_and_detects_a_bad_one(stack, receiver):
    from chalicelib.domain.notifications import sign

    verify_webhook = documented_verifier()
    org = create_org("signed")
    hook, receiver.secret = register(org, receiver.url)
    (expected,) = publish(org, 1, "signed")
    stack.runner.run_until_idle(30)
    (delivery,) = receiver.accepted()

    event = verify_webhook(delivery.payload, delivery.signature, receiver.secret)
    assert event["id"] == expected and event["type"] == "invoice.synced" and event["org"] == org

    tampered = delivery.payload.replace(b'"n":0', b'"n":1')
    assert tampered != delivery.payload
    stale = sign(delivery.payload.decode(), receiver.secret, int(time.time()) - 301)
    for payload, header, secret in [
        (tampered, delivery.signature, receiver.secret),
        (delivery.payload, delivery.signature, "whsec_someone_else"),
        (delivery.payload, stale, receiver.secret),
        (delivery.payload, "", receiver.secret),
        (delivery.payload, delivery.signature.replace("v1=", "v1=0"), receiver.secret),
    ]:
        with pytest.raises(ValueError):
            verify_webhook(payload, header, secret)


@pytest.mark.parametrize("url", [
    "http://hooks.example.com/x",             # not https
    "https://127.0.0.1/hooks",                # loopback
    "https://localhost/hooks",                # a name for loopback
    "https://10.0.0.5/hooks",                 # private
    "https://192.168.1.10/hooks",
    "https://172.16.0.1/hooks",
    "https://100.64.0.1/hooks",               # carrier-grade NAT
    "https://169.254.169.254/latest/meta-data",  # link-local: the cloud metadata service
    "https://[::1]/hooks",
    "https://[fe80::1]/hooks",
    "https://[::ffff:127.0.0.1]/hooks",       # loopback mapped into IPv6
    "https://0.0.0.0/hooks",
    "https://user:secret@93.184.215.14/hooks",  # credentials in the URL
    "ftp://93.184.215.14/hooks",
])
def test_ssrf_targets_are_refused_outside_the_local_stage(url):
    from chalicelib.services.endpoints import UnsafeUrl, check_url

    with pytest.raises(UnsafeUrl):
        check_url(url, local_stage=False)


def test_a_public_https_url_is_accepted_and_the_api_refuses_an_unsafe_one(stack, api, set_env):
    from chalicelib.services.endpoints import check_url

    check_url("https://93.184.215.14/hooks", local_stage=False)  # an address literal: no DNS needed
    set_env(STAGE="dev")
    org = create_org("ssrf")
    admin = {"Authorization": f"Bearer {stack.tokens['admin']}", "Content-Type": "application/json"}
    body = json.dumps({"url": "https://169.254.169.254/latest/meta-data", "event_types": ["invoice.paid"]})
    assert api.http.post(f"/v1/orgs/{org}/webhook-endpoints", headers=admin, body=body).status_code == 422
    body = json.dumps({"url": "https://169.254.169.254/latest/meta-data", "event_types": ["invoice.synced"]})
    response = api.http.post(f"/v1/orgs/{org}/webhook-endpoints", headers=admin, body=body)
    assert response.status_code == 422 and response.json_body["error"]["code"] == "unsafe_url", response.body
    listed = api.http.get(f"/v1/orgs/{org}/webhook-endpoints", headers=admin).json_body
    assert listed == {"endpoints": []}


def test_deliveries_check_the_address_again_before_sending(stack, receiver, set_env):
    """A name accepted once can be re-pointed inside the network later: each delivery checks it anew."""
    org = create_org("rebind")
    hook, receiver.secret = register(org, receiver.url)  # loopback, allowed while registering locally
    set_env(STAGE="dev")
    publish(org, 1, "rebind")
    stack.runner.run_until_idle(30)
    assert receiver.received == []
    (delivery,) = deliveries(org, hook.id).values()
    assert delivery.status.value == "retrying" and delivery.last_error.startswith("refused:")

    from chalicelib.services.endpoints import delete_endpoint

    delete_endpoint(org, hook.id, datetime.now(UTC))  # its retries end as skipped, not in the next test's way
    wait_for(lambda: deliveries(org, hook.id)[delivery.event_id].status.value == "skipped", 30,
             lambda: poll(stack), "the retry to find the endpoint gone")


def test_an_endpoint_failing_for_days_is_disabled_with_a_notice(stack, api, receiver, set_env):
    set_env(WEBHOOK_DISABLE_AFTER_SECONDS="2")  # three days in production
    org = create_org("failing")
    hook, receiver.secret = register(org, receiver.url)
    receiver.fail_next(1000, status=503)
    publish(org, 1, "failing")
    wait_for(lambda: endpoint(org, hook.id).status.value == "disabled", 60, lambda: poll(stack),
             "the endpoint to be disabled")
    stack.runner.run_until_idle(30)

    disabled = endpoint(org, hook.id)
    assert "every delivery failed since" in disabled.disabled_reason and "503" in disabled.disabled_reason
    (delivery,) = deliveries(org, hook.id).values()
    assert delivery.status.value == "dead" and delivery.last_status_code == 503  # in the delivery DLQ now
    admin = {"Authorization": f"Bearer {stack.tokens['admin']}"}
    shown = api.http.get(f"/v1/orgs/{org}/webhook-endpoints", headers=admin).json_body["endpoints"][0]
    assert shown["status"] == "disabled" and shown["disabled_reason"] == disabled.disabled_reason

    tried = len(receiver.received)
    later = publish(org, 1, "while-disabled")
    stack.runner.run_until_idle(30)
    assert len(receiver.received) == tried  # nothing is sent to (or queued for) a disabled endpoint
    assert not later & set(deliveries(org, hook.id))

    receiver.fail_next(0)
    enabled = api.http.post(f"/v1/orgs/{org}/webhook-endpoints/{hook.id}/enable", headers=admin).json_body
    assert enabled["status"] == "enabled" and enabled["disabled_reason"] is None
    after = publish(org, 1, "after-enable")
    stack.runner.run_until_idle(30)
    assert after <= receiver.event_ids()


def test_endpoint_api_shows_the_secret_once_and_refuses_bad_input(stack, api):
    org = create_org("endpoints")
    admin = {"Authorization": f"Bearer {stack.tokens['admin']}", "Content-Type": "application/json"}
    path = f"/v1/orgs/{org}/webhook-endpoints"
    for bad in [{"url": "https://example.com/x", "event_types": []},
                {"url": "https://example.com/x", "event_types": ["invoice.exploded"]},
                {"url": "not a url at all", "event_types": ["invoice.synced"]},
                {"url": "https://example.com/x", "event_types": ["invoice.synced"], "extra": 1}]:
        response = api.http.post(path, headers=admin, body=json.dumps(bad))
        assert response.status_code == 422, (bad, response.body)
    created = api.http.post(path, headers=admin, body=json.dumps(
        {"url": "https://example.com/hooks", "event_types": ["invoice.synced", "budget.threshold_crossed"]}))
    assert created.status_code == 201, created.body
    made = created.json_body
    assert made["secret"].startswith("whsec_") and made["status"] == "enabled"
    (listed,) = api.http.get(path, headers=admin).json_body["endpoints"]
    assert "secret" not in listed and listed["id"] == made["id"]
    assert made["secret"] not in json.dumps(api.http.get(path, headers=admin).json_body)
    log = api.http.get(f"{path}/{made['id']}/deliveries", headers=admin)
    assert log.status_code == 200 and log.json_body == {"deliveries": []}
    usage = {"Authorization": f"Bearer {stack.tokens['usage']}"}
    assert api.http.delete(f"{path}/{made['id']}", headers=usage).status_code == 403
    assert api.http.delete(f"{path}/{made['id']}", headers=admin).status_code == 200
    assert api.http.delete(f"{path}/{made['id']}", headers=admin).status_code == 404
    assert api.http.get(f"{path}/{made['id']}/deliveries", headers=admin).status_code == 404


def oncall(capsys: Any, *args: str) -> Any:
    from chalicelib.oncall.cli import main

    capsys.readouterr()  # the service's own logs so far (they go to stdout, as in Lambda)
    code = main(["--json", *args])
    output = capsys.readouterr().out
    assert code == 0, output
    return json.loads(output)


def test_oncall_lists_deliveries_and_replays_what_an_endpoint_missed(stack, receiver, set_env, capsys):
    set_env(WEBHOOK_RETRY_SCHEDULE_SECONDS="1")  # one retry, then the delivery DLQ
    org = create_org("oncall")
    hook, receiver.secret = register(org, receiver.url)
    receiver.down()
    missed = publish(org, 2, "oncall")
    wait_for(lambda: {d.status.value for d in deliveries(org, hook.id).values()} == {"dead"} and
             len(deliveries(org, hook.id)) == 2, 60, lambda: poll(stack), "both deliveries to give up")

    shown = oncall(capsys, "webhooks", "deliveries", org, hook.id)["deliveries"]
    assert {(d["event_id"], d["status"], d["attempts"]) for d in shown} == {(e, "dead", 2) for e in missed}
    assert oncall(capsys, "webhooks", "list", org)["endpoints"][0]["failing_since"] is not None
    assert len(oncall(capsys, "webhooks", "dlq-replay", "--dry-run")["moved"]) >= 2

    receiver.up()
    planned = oncall(capsys, "webhooks", "replay", org, hook.id, "--dry-run")
    assert set(planned["queued"]) == missed and planned["dry_run"] is True
    stack.runner.run_until_idle(30)
    assert receiver.event_ids() == set()  # a dry run changes nothing
    assert set(oncall(capsys, "webhooks", "replay", org, hook.id)["queued"]) == missed
    stack.runner.run_until_idle(30)
    assert receiver.event_ids() == missed

    again = oncall(capsys, "webhooks", "replay", org, hook.id)  # safe to run twice
    assert again["queued"] == [] and set(again["skipped"]) == missed
    oncall(capsys, "webhooks", "dlq-replay")  # the dead letters come back and find their events delivered
    before = len(receiver.received)
    stack.runner.run_until_idle(30)
    assert len(receiver.received) == before
