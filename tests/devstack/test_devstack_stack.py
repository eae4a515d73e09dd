"""LocalStack: the whole stack on free ports, over real HTTP, and nothing left running afterwards."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import warnings
from typing import Any
from urllib.parse import urlsplit

import pytest

from devstack.env import chalice_config_environment
from devstack.local_stack import LocalStack
from devstack.stack import PROJECT_ROOT as ROOT

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with NO_PROXY.open(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def listening(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((parts.hostname, parts.port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


@pytest.mark.slow  # DynamoDB Local, `chalice local`
def test_local_stack_serves_the_api_and_stops_every_process_it_started() -> None:
    before = dict(os.environ)
    with warnings.catch_warnings():
        # With javac present, DynamoDB Local must not fall back to listening on all interfaces.
        warnings.simplefilter("error" if shutil.which("javac") else "ignore")
        stack = LocalStack().start()
    with stack:
        assert stack.dynamodb.bind_host == ("127.0.0.1" if shutil.which("javac") else "0.0.0.0")
        assert stack.api_url is not None
        status, document = http("GET", stack.api_url + "/v1/openapi.json")
        assert status == 200 and "openapi" in document

        env = stack.env
        assert os.environ["TABLE_NAME"] == env["TABLE_NAME"] == stack.resources.table_name
        assert env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] == env["AWS_ENDPOINT_URL_DYNAMODB"]
        assert env["TABLE_STREAM_ARN"] == stack.resources.stream_arn
        assert env["STRIPE_API_BASE"] == stack.stripe.base_url
        for url in (env["AWS_ENDPOINT_URL_DYNAMODB"], env["AWS_ENDPOINT_URL_SQS"], env["STRIPE_API_BASE"],
                    stack.api_url):
            assert urlsplit(url).hostname == "127.0.0.1"

        # The API process reads the same table: the seeded admin token is accepted there.
        status, org = http("PUT", stack.api_url + "/v1/orgs/acme", stack.tokens["admin"],
                           {"name": "Acme", "email": "billing@acme.test"})
        assert status in (200, 201), org
        status, _ = http("GET", stack.api_url + "/v1/orgs/acme", "not-a-token")
        assert status == 401

        # The runner is built lazily from the app's handlers and delivers the writes above.
        assert stack.runner.run_until_idle(timeout_s=30) >= 3  # two tokens and the org
        assert stack.runner.failed_batches == []

        pids = stack.pids()
        assert set(pids) == {"api", "dynamodb"}
        urls = [env["AWS_ENDPOINT_URL_DYNAMODB"], env["AWS_ENDPOINT_URL_SQS"], env["STRIPE_API_BASE"], stack.api_url]
        assert all(listening(url) for url in urls)

    assert not any(pid_alive(pid) for pid in pids.values())
    assert not any(listening(url) for url in urls)
    assert dict(os.environ) == before
    assert stack.pids() == {}
    stack.stop()  # idempotent


def test_chalice_config_environment_merges_top_level_and_stage_variables(tmp_path: Any) -> None:
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps({
        "environment_variables": {"LOG_LEVEL": "INFO", "TABLE_NAME": "top"},
        "stages": {"dev": {"environment_variables": {"TABLE_NAME": "usage-invoicing-dev", "STAGE": "dev"}}},
    }))
    assert chalice_config_environment("dev", tmp_path) == {
        "LOG_LEVEL": "INFO", "TABLE_NAME": "usage-invoicing-dev", "STAGE": "dev"}
    assert chalice_config_environment("local", tmp_path) == {"LOG_LEVEL": "INFO", "TABLE_NAME": "top"}


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.slow  # every part as its own process
def test_stack_cli_up_is_idempotent_and_down_stops_everything(tmp_path: Any) -> None:
    api, dynamodb, sqs, stripe = free_ports(4)
    options = ["--run-dir", str(tmp_path), "--api-port", str(api), "--dynamodb-port", str(dynamodb),
               "--sqs-port", str(sqs), "--stripe-port", str(stripe)]

    def stack(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "devstack.stack", command, *options], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)

    try:
        first = stack("up")
        assert first.returncode == 0, first.stdout + first.stderr
        pids = {path.stem: int(path.read_text()) for path in tmp_path.glob("*.pid")}
        assert set(pids) == {"dynamodb", "sqs", "stripe", "api", "runner"}
        assert "dev-admin-token" in first.stdout and "dev-usage-token" in first.stdout
        assert http("GET", f"http://127.0.0.1:{api}/v1/openapi.json")[0] == 200
        assert f"AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:{dynamodb}" in (tmp_path / "env").read_text()

        second = stack("up")
        assert second.returncode == 0, second.stdout + second.stderr
        assert second.stdout.count("already running") == 5
        assert {path.stem: int(path.read_text()) for path in tmp_path.glob("*.pid")} == pids
        assert stack("status").returncode == 0
    finally:
        down = stack("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not list(tmp_path.glob("*.pid"))
    assert not any(pid_alive(pid) for pid in pids.values())
    assert not any(listening(f"http://127.0.0.1:{port}") for port in (api, dynamodb, sqs, stripe))
    assert stack("status").returncode == 3
