"""`invoicing-admin tokens create|list|revoke` against DynamoDB Local, and the API accepting what it issues."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def admin(capsys: pytest.CaptureFixture[str], local_aws: Any) -> Any:
    from chalicelib.admin.cli import main

    def run(*argv: str) -> tuple[int, Any]:
        capsys.readouterr()
        code = main([*argv, "--json"])
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip() else None

    return run


def test_create_prints_the_token_once_list_shows_labels_and_last_use_never_secrets(admin, api, org):
    label = f"collector {uuid.uuid4().hex[:6]}"

    code, created = admin("tokens", "create", "--label", label, "--scope", f"usage:write:{org}",
                          "--scope", f"org:{org}:read", "--expires-in", "90d")

    assert code == 0
    token = created["token"]
    assert token.startswith("ivk_") and len(token) > 40
    assert created["scopes"] == sorted([f"usage:write:{org}", f"org:{org}:read"])
    assert created["valid_until"] and created["last_used_at"] is None
    assert api.http.get(f"/v1/orgs/{org}", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    code, listed = admin("tokens", "list")

    assert code == 0
    mine = [t for t in listed["tokens"] if t["token_id"] == created["token_id"]]
    assert len(mine) == 1 and mine[0]["label"] == label and mine[0]["last_used_at"] is not None
    assert token not in json.dumps(listed)
    assert "token" not in mine[0]


def test_revoke_by_id_or_unique_prefix_and_the_token_stops_working(admin, api, org):
    _, created = admin("tokens", "create", "--label", "to revoke", "--scope", f"org:{org}:read")
    token, token_id = created["token"], created["token_id"]

    code, revoked = admin("tokens", "revoke", token_id[:10])

    assert code == 0 and revoked["revoked"]["token_id"] == token_id
    assert api.http.get(f"/v1/orgs/{org}", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert token_id not in {t["token_id"] for t in admin("tokens", "list")[1]["tokens"]}
    code, missing = admin("tokens", "revoke", token_id)
    assert code == 1 and missing["error"]["code"] == "not_found"


def test_create_refuses_unknown_scopes_and_bad_durations(admin, capsys):
    code, refused = admin("tokens", "create", "--label", "x", "--scope", "usage:write:ACME#1", "--scope", "root")
    assert code == 1 and refused["error"]["code"] == "invalid_request"
    assert "usage:write:ACME#1" in refused["error"]["message"] and "root" in refused["error"]["message"]

    with pytest.raises(SystemExit) as exited:
        admin("tokens", "create", "--label", "x", "--scope", "admin", "--expires-in", "forever")
    assert exited.value.code == 2


def test_outside_the_local_stage_it_refuses_to_issue_without_a_pepper(admin, monkeypatch):
    from chalicelib.config import reload_settings

    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.setenv("TOKEN_PEPPER", "")
    reload_settings()
    try:
        code, refused = admin("tokens", "create", "--label", "x", "--scope", "admin")
    finally:
        monkeypatch.undo()
        reload_settings()
    assert code == 1 and refused["error"]["code"] == "missing_secret"


@pytest.mark.slow  # runs the installed console script
def test_the_console_script_is_installed_next_to_the_interpreter():
    script = Path(sys.executable).parent / "invoicing-admin"
    result = subprocess.run([str(script), "tokens", "create", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage:write:ORG" in result.stdout and "--expires-in" in result.stdout
