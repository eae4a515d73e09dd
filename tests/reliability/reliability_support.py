"""Shared by the reliability tests: a local stack on the test run's servers, an HTTP client for the API,
and the table as it stands."""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from support.crashes import ProcessDied as ProcessDied  # noqa: F401  (the reliability tests import it from here)

HTTP_TIMEOUT_S = 120  # one request to `chalice local`; a 500-event batch takes seconds on DynamoDB Local


@contextmanager
def running_stack(local_aws: Any, *, own_dynamodb: bool = False, **options: Any) -> Iterator[Any]:
    """A `LocalStack` (the `chalice local` API, the Stripe emulator, the event runner) on a fresh table.

    It reuses the test run's DynamoDB Local and SQS servers unless `own_dynamodb`. Taking `local_aws` first
    matters: the stack saves the environment when it starts and restores it when it stops, so the test run's
    settings must already be in it.
    """
    from devstack.local_stack import LocalStack

    suffix = uuid.uuid4().hex[:8]
    stack = LocalStack(
        table_name=f"reliability-{suffix}",
        queue_prefix=f"reliability-{suffix}",
        dynamodb_endpoint=None if own_dynamodb else local_aws.dynamodb_endpoint,
        sqs_endpoint=local_aws.sqs_endpoint,
        **options,
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@dataclass
class Api:
    """The HTTP API as a producer or a dashboard sees it. One instance per thread (each keeps its own connection).

    Given the server's log (`Api.of(stack)`), a 5xx answer prints the log's tail: the answer itself says only
    "internal_error", and the traceback that explains it is in the log, which CI shows only if printed."""

    base_url: str
    server_log: Callable[[], str] | None = None
    explained: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, stack: Any) -> Api:
        """A client of a `running_stack`'s API that explains its 5xx answers from the server's log."""
        return cls(stack.api_url, stack.api_log)

    def __post_init__(self) -> None:
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only: never through a proxy from the environment

    def call(self, method: str, path: str, token: str | None = None, *, json: Any = None,
             headers: Mapping[str, str] | None = None, data: bytes | str | None = None,
             params: Mapping[str, str] | None = None) -> requests.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        response = self.http.request(method, self.base_url + path, json=json, data=data, headers=sent,
                                     params=params, timeout=HTTP_TIMEOUT_S)
        if response.status_code >= 500:
            self.explain(method, path, response)
        return response

    def explain(self, method: str, path: str, response: requests.Response) -> None:
        # 503 is the API asking producers to back off, which they do: its first occurrence is explained, once.
        if self.server_log is None or (response.status_code == 503 and 503 in self.explained):
            return
        self.explained.add(response.status_code)
        report(f"{method} {path} answered {response.status_code} {response.text[:300]}; "
               f"the API server's log ends with:\n{tail(self.server_log())}")

    def close(self) -> None:
        self.http.close()


def put_org(api: Api, admin_token: str, org: str) -> None:
    response = api.call("PUT", f"/v1/orgs/{org}", admin_token,
                        json={"name": f"Reliability {org}", "email": f"billing@{org}.example.com"})
    assert response.status_code == 201, response.text


def new_org_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_token(scopes: set[str], name: str = "reliability") -> str:
    from datetime import UTC, datetime

    from chalicelib.config import settings
    from chalicelib.storage.tokens import TokenRepository

    token = f"tok-{uuid.uuid4().hex}"
    TokenRepository(settings().token_pepper).put(token, name, scopes, datetime.now(UTC))
    return token


def report(line: str) -> None:
    """A measured figure, printed so `pytest -s` (and a failing test's captured output) shows it."""
    print(f"[reliability] {line}", flush=True)


def tail(text: str, lines: int = 60) -> str:
    """The last `lines` lines of a log."""
    return "\n".join(text.splitlines()[-lines:])


def with_tracebacks(errors: Sequence[BaseException]) -> str:
    """What threads of a test raised, each with its traceback (an exception's repr is only its message)."""
    return "\n".join("".join(traceback.format_exception(error)) for error in errors)
