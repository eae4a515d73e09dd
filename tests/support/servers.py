"""The servers a test run starts once and every test shares: DynamoDB Local, moto's SQS server and the
Stripe emulator. Tests keep their data apart instead (fresh org names, their own tables and queues, an
emulator reset before each test).

DynamoDB Local is a JVM: seconds of CPU to start and hundreds of MB to run. On several workers
(pytest-xdist, `make test`) the controller starts the one server and every worker uses it, each with
its own session table; in a single process the session starts it. moto's server and the emulator live
in each test process's threads, so each worker has its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .environment import LOCAL_ENV, EnvironmentOverrides

# The worker's name under pytest-xdist (gw0, gw1, ...): tables with fixed names stay apart between workers.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
SESSION_TABLE = f"invoicing-test-{WORKER}"
SHARED_DYNAMODB = "TESTS_SHARED_DYNAMODB"  # endpoint URL and bind host of the controller's server
# The JVM's defaults: the run's shared server answers minutes of requests from every worker, long enough for
# the server JIT's compiling to pay back (devstack's short-lived servers use the client JIT only).
SHARED_SERVER_JVM_OPTIONS: tuple[str, ...] = ()


@dataclass(frozen=True)
class SharedDynamoDB:
    """The controller's DynamoDB Local, as a worker sees it."""

    endpoint_url: str
    bind_host: str

    @property
    def port(self) -> int:
        return int(self.endpoint_url.rsplit(":", 1)[1])


def pytest_configure(config: pytest.Config) -> None:
    """On the controller of several workers, start the run's one DynamoDB Local before they start."""
    distributed = getattr(config.option, "numprocesses", None) not in (None, 0)
    if not distributed or hasattr(config, "workerinput") or SHARED_DYNAMODB in os.environ:
        return
    from devstack.dynamodb_local import DynamoDBLocal

    server = DynamoDBLocal(jvm_options=SHARED_SERVER_JVM_OPTIONS)
    server.start()
    config.add_cleanup(server.stop)
    os.environ[SHARED_DYNAMODB] = f"{server.endpoint_url} {server.bind_host}"  # the workers inherit it
    config.add_cleanup(lambda: os.environ.pop(SHARED_DYNAMODB, None))


@dataclass(frozen=True)
class LocalAws:
    dynamodb_endpoint: str
    sqs_endpoint: str
    table_name: str
    stream_arn: str
    queue_url: str
    dlq_url: str


@pytest.fixture(scope="session")
def dynamodb_server() -> Iterator[Any]:
    """The run's one DynamoDB Local: the controller's under several workers, else started here."""
    shared = os.environ.get(SHARED_DYNAMODB)
    if shared:
        endpoint_url, bind_host = shared.split()
        yield SharedDynamoDB(endpoint_url, bind_host)
        return
    from devstack.dynamodb_local import DynamoDBLocal

    with DynamoDBLocal(jvm_options=SHARED_SERVER_JVM_OPTIONS) as server:
        yield server


@pytest.fixture(scope="session")
def sqs_server() -> Iterator[Any]:
    """The session's one moto SQS server, in this process."""
    from devstack.sqs_local import SqsLocal

    with SqsLocal() as server:
        yield server


@pytest.fixture(scope="session")
def local_aws(dynamodb_server: Any, sqs_server: Any) -> Iterator[LocalAws]:
    """The app's table and queues (from infra/resources.yaml) on the session's servers, and the app's
    settings pointed at them for the whole run."""
    from devstack.env import resource_environment
    from devstack.resources import create_local_resources

    environment = EnvironmentOverrides()
    environment.apply(LOCAL_ENV)
    ddb_url, sqs_url = dynamodb_server.endpoint_url, sqs_server.endpoint_url
    try:
        resources = create_local_resources(ddb_url, sqs_url, SESSION_TABLE, SESSION_TABLE,
                                           sync_queue_visibility_seconds=2, receive_wait_seconds=0)
        environment.apply(resource_environment(ddb_url, sqs_url, resources))
        from chalicelib.config import settings
        from chalicelib.services.bootstrap import bind_storage

        bind_storage(settings())
        yield LocalAws(ddb_url, sqs_url, resources.table_name, resources.stream_arn, resources.queue_url,
                       resources.dlq_url)
    finally:
        environment.restore()


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[Any]:
    """The session's one Stripe emulator; take it through a suite's `emulator` fixture, which resets it."""
    from devstack.stripe_emulator import StripeEmulator

    with StripeEmulator() as emulator:
        yield emulator
