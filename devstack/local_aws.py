"""Local AWS endpoints, in one place: the loopback address, dummy credentials, boto3 clients for local
servers, free ports, and whether a server answers yet."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_REGION", "LOOPBACK", "client", "credentials", "free_port", "port_in_use", "readiness_probe"]

LOOPBACK = "127.0.0.1"
DEFAULT_REGION = "us-east-1"


def credentials() -> dict[str, str | None]:
    """The environment's keys, else dummy ones.

    Only environment variables are consulted: the full boto3 chain could query the instance metadata
    service, and local endpoints never need real keys.
    """
    key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return {"aws_access_key_id": key, "aws_secret_access_key": secret,
                "aws_session_token": os.environ.get("AWS_SESSION_TOKEN")}
    return {"aws_access_key_id": "test", "aws_secret_access_key": "test", "aws_session_token": None}


def client(service: str, endpoint: str | None, region: str = DEFAULT_REGION, **config: Any) -> Any:
    """A boto3 client for `service` at `endpoint` (None: boto3's own choice, e.g. AWS_ENDPOINT_URL_SQS);
    `config` goes to botocore's Config (timeouts, retries)."""
    import boto3
    from botocore.config import Config

    return boto3.client(service, endpoint_url=endpoint, region_name=region, config=Config(**config),
                        **credentials())


def readiness_probe(service: str, endpoint: str) -> Callable[[], bool]:
    """A check that the local DynamoDB or SQS server at `endpoint` serves requests now (one client for every
    call: building a boto3 client costs more than the request)."""
    probe = client(service, endpoint, connect_timeout=1, read_timeout=5, retries={"total_max_attempts": 1})

    def answers() -> bool:
        try:
            if service == "dynamodb":
                probe.list_tables(Limit=1)
            else:
                probe.list_queues()
        except Exception:  # any failure means "not yet"; callers poll until a deadline
            return False
        return True

    return answers


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
