"""Tokens on a real table: stored as an HMAC only, expiring, recording last use; writers limited to named orgs;
no pepper, no service outside the local stage."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import timedelta

import pytest
from acceptance_support import assert_error, bearer, post_usage, usage_event


def _issue(scopes: set[str], valid_until=None, label: str = "test token") -> tuple[str, object]:
    from chalicelib import clock
    from chalicelib.config import settings
    from chalicelib.storage.tokens import TokenRepository

    return TokenRepository(settings().token_pepper).issue(label, scopes, clock.now(), valid_until)


def _raw_item(token: str) -> dict[str, object]:
    import boto3

    from chalicelib.config import settings

    digest = hmac.new(settings().token_pepper.encode(), token.encode(), hashlib.sha256).hexdigest()
    client = boto3.client("dynamodb", region_name="us-east-1")
    found = client.get_item(TableName=settings().table_name, Key={"pk": {"S": f"TOKEN#{digest}"}, "sk": {"S": "TOKEN"}},
                            ConsistentRead=True)
    return found.get("Item", {})


def test_an_issued_token_is_stored_as_an_hmac_with_the_pepper_and_never_in_clear(api, org):
    token, info = _issue({f"org:{org}:read"}, label="dashboard reader")

    item = _raw_item(token)

    assert item, "the token's key is the HMAC-SHA256 of the token keyed by the pepper"
    assert token not in repr(item)
    assert item["name"] == {"S": "dashboard reader"} and item["scopes"] == {"SS": [f"org:{org}:read"]}
    assert api.http.get(f"/v1/orgs/{org}", headers=bearer(token)).status_code == 200


def test_an_expired_token_is_refused(api, org, pinned_clock):
    token, _ = _issue({f"org:{org}:read"}, valid_until=pinned_clock.now + timedelta(hours=1))
    assert api.http.get(f"/v1/orgs/{org}", headers=bearer(token)).status_code == 200

    pinned_clock.now += timedelta(hours=1)

    error = assert_error(api.http.get(f"/v1/orgs/{org}", headers=bearer(token)), 401, "unauthorized")
    assert "expired" in error["message"]


def test_last_use_is_recorded_once_per_resolution_and_never_recreates_a_revoked_token(api, org, pinned_clock):
    from chalicelib.config import settings
    from chalicelib.storage.tokens import LAST_USE_RESOLUTION, TokenRepository

    repo = TokenRepository(settings().token_pepper)
    token, info = _issue({f"org:{org}:read"})
    assert info.last_used_at is None
    first_use = pinned_clock.now
    # A refused request writes nothing, not even the last use.
    assert_error(api.http.get("/v1/reports/monthly-totals?from=2026-01&to=2026-02", headers=bearer(token)), 403)
    assert_error(post_usage(api, token, [usage_event(org, "not-allowed")]), 403)
    assert repo.find(token).last_used_at is None

    api.http.get(f"/v1/orgs/{org}", headers=bearer(token))
    pinned_clock.now += LAST_USE_RESOLUTION / 2
    api.http.get(f"/v1/orgs/{org}", headers=bearer(token))
    assert repo.find(token).last_used_at == first_use

    pinned_clock.now += LAST_USE_RESOLUTION
    api.http.get(f"/v1/orgs/{org}", headers=bearer(token))
    assert repo.find(token).last_used_at == pinned_clock.now

    stale = repo.find(token)
    assert repo.revoke(info.token_id)
    pinned_clock.now += LAST_USE_RESOLUTION * 2
    repo.note_use(token, stale, pinned_clock.now)  # a request that authenticated just before the revoke
    assert repo.find(token) is None
    assert_error(api.http.get(f"/v1/orgs/{org}", headers=bearer(token)), 401, "unauthorized")


def test_a_writer_limited_to_one_org_cannot_write_or_claim_event_ids_of_another(api, tokens, make_org, pinned_clock):
    own, other = make_org(), make_org()
    token, _ = _issue({f"usage:write:{own}"}, label="producer of one org")
    claimed = f"evt-{uuid.uuid4().hex[:8]}"

    response = post_usage(api, token, [usage_event(own, "mine-1"), usage_event(other, claimed)])

    assert response.status_code == 200, response.body
    by_id = {r["id"]: r for r in response.json_body["results"]}
    assert by_id["mine-1"]["status"] == "accepted"
    assert by_id[claimed]["status"] == "rejected" and by_id[claimed]["error"]["code"] == "forbidden"
    assert response.json_body["counts"] == {"accepted": 1, "duplicate": 0, "conflict": 0, "rejected": 1}
    # The other org's own producer still owns that event id: its event is accepted, not a "duplicate".
    theirs = post_usage(api, tokens["usage"], [usage_event(other, claimed)])
    assert theirs.json_body["results"][0]["status"] == "accepted"


def test_a_batch_with_no_event_the_writer_may_write_is_refused_whole_and_writes_nothing(api, make_org, pinned_clock):
    from chalicelib.storage.invoices import InvoiceRepository

    own, other = make_org(), make_org()
    token, _ = _issue({f"usage:write:{own}"})

    response = post_usage(api, token, [usage_event(other, "x-1"), usage_event(other, "x-2")])

    error = assert_error(response, 403, "forbidden")
    assert error["details"] == {"orgs": [other]}
    assert InvoiceRepository().page(other, 10, None)[0] == []
    # Such a token reads nothing either: writing usage for an org is not reading its invoices.
    assert_error(api.http.get(f"/v1/orgs/{own}/invoices", headers=bearer(token)), 403, "forbidden")


def test_the_all_orgs_writer_and_admin_still_write_for_every_org(api, tokens, make_org, pinned_clock):
    first, second = make_org(), make_org()
    for token in (tokens["usage"], tokens["admin"]):
        tag = uuid.uuid4().hex[:6]
        response = post_usage(api, token, [usage_event(first, f"a-{tag}"), usage_event(second, f"b-{tag}")])
        assert response.json_body["counts"]["accepted"] == 2, response.body


@pytest.mark.parametrize("stage, refused", [("prod", True), ("dev", True), ("local", False)])
def test_without_a_pepper_only_the_local_stage_serves(api, org, tokens, monkeypatch, stage, refused):
    from chalicelib.config import MissingSecret, reload_settings, require_pepper

    monkeypatch.setenv("STAGE", stage)
    monkeypatch.setenv("TOKEN_PEPPER", "")
    monkeypatch.delenv("TOKEN_PEPPER_PARAM", raising=False)
    try:
        current = reload_settings()
        if refused:
            with pytest.raises(MissingSecret, match="TOKEN_PEPPER"):
                require_pepper(current)
            response = api.http.get(f"/v1/orgs/{org}", headers=bearer(tokens["admin"]))
            assert response.status_code == 500  # the function refuses to serve; nothing is authenticated
        else:
            assert require_pepper(current) == ""
            # An unpeppered table knows none of the test's tokens: refused as unknown, not as misconfigured.
            assert_error(api.http.get(f"/v1/orgs/{org}", headers=bearer(tokens["admin"])), 401)
    finally:
        monkeypatch.undo()
        reload_settings()
