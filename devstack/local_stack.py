"""The whole local stack in this process, on free ports, for tests, the demo and benchmarks.

    with LocalStack() as stack:
        requests.get(stack.api_url + "/v1/openapi.json")
        stack.runner.run_until_idle()      # delivers stream records / SQS messages

``LocalStack`` runs DynamoDB Local (a Java child process), moto's SQS server and the
Stripe emulator in this process's threads, and the API as a ``chalice local``
subprocess; it applies the environment to ``os.environ`` (restored by ``stop()``).

The API runs as ``chalice local --stage local`` by default. ``chalice local``
copies the ``environment_variables`` of ``.chalice/config.json`` (top level and the
stage's) over the process environment, so with ``--stage dev`` it would replace
TABLE_NAME and STAGE. Whatever the chosen stage forces is merged into the stack's
environment, so the API, the event runner and the tests agree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from devstack import api_server
from devstack import env as local_env
from devstack.dev_tokens import prepare_app
from devstack.local_aws import LOOPBACK, free_port
from devstack.supervisor import PROJECT_ROOT, STOP_TIMEOUT_S, StackError, wait_until

__all__ = ["DEFAULT_CHALICE_STAGE", "DEFAULT_TABLE_NAME", "READINESS_PATH", "WEBHOOK_PATH", "LocalStack",
           "http_status"]

DEFAULT_TABLE_NAME = "usage-invoicing-local"
DEFAULT_CHALICE_STAGE = "local"
WEBHOOK_PATH = "/v1/stripe/webhook"
READINESS_PATH = "/v1/openapi.json"
STARTUP_TIMEOUT_S = 90.0


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The status `url` answers with, None if nothing answers (never through a proxy: loopback only)."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def reset_app_binding() -> None:
    """Forget the app module's per-process binding, so it re-reads the settings."""
    module = sys.modules.get("app")
    bound = getattr(module, "_bound", None)
    if isinstance(bound, list):
        bound.clear()


class LocalStack:
    """The local stack on free ports for tests and the demo.

    ``api=False`` skips the HTTP API. ``.runner`` (the event runner) is built on
    first use and driven by the caller (``run_until_idle()``, ``poll_once()``).
    ``runner_options`` go to ``EventRunner`` (e.g. ``max_retries``),
    ``stripe_options`` to ``StripeEmulator`` (e.g. ``global_rate_limit``),
    ``extra_env`` is added to the environment (the chalice stage's config.json
    variables still win for the API process).
    ``dynamodb_endpoint`` /
    ``sqs_endpoint`` reuse servers that are already running (not stopped by
    ``stop()``) instead of starting new ones; the table and queues are still
    created (use a distinct ``table_name`` then).
    """

    def __init__(
        self,
        *,
        table_name: str = DEFAULT_TABLE_NAME,
        queue_prefix: str | None = None,
        sync_queue_visibility_seconds: int | None = 2,
        receive_wait_seconds: int | None = 0,
        api: bool = True,
        chalice_stage: str = DEFAULT_CHALICE_STAGE,
        runner_options: Mapping[str, Any] | None = None,
        stripe_options: Mapping[str, Any] | None = None,
        extra_env: Mapping[str, str] | None = None,
        dynamodb_endpoint: str | None = None,
        sqs_endpoint: str | None = None,
    ) -> None:
        self.external_dynamodb_endpoint = dynamodb_endpoint
        self.external_sqs_endpoint = sqs_endpoint
        self.table_name = table_name
        self.queue_prefix = queue_prefix or f"usage-invoicing-local-{uuid.uuid4().hex[:8]}"
        self.sync_queue_visibility_seconds = sync_queue_visibility_seconds
        self.receive_wait_seconds = receive_wait_seconds
        self.with_api = api
        self.chalice_stage = chalice_stage
        self.runner_options = dict(runner_options or {})
        self.stripe_options = dict(stripe_options or {})
        self.extra_env = dict(extra_env or {})

        self.dynamodb: Any = None
        self.sqs: Any = None
        self.stripe: Any = None
        self.resources: Any = None
        self.env: dict[str, str] = {}
        self.notes: list[str] = []
        self.api_url: str | None = None
        self.api_process: subprocess.Popen[bytes] | None = None
        self._runner: Any = None
        self._saved_env: dict[str, str] | None = None
        self._logdir: tempfile.TemporaryDirectory[str] | None = None

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> LocalStack:
        if self._saved_env is not None:
            return self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from devstack.dynamodb_local import DynamoDBLocal
        from devstack.resources import create_local_resources
        from devstack.sqs_local import SqsLocal
        from devstack.stripe_emulator import StripeEmulator

        self._saved_env = dict(os.environ)
        self._logdir = tempfile.TemporaryDirectory(prefix="localstack-api-")
        if self.external_dynamodb_endpoint:
            dynamodb_url = self.external_dynamodb_endpoint
        else:
            self.dynamodb = DynamoDBLocal(port=0)
            dynamodb_url = self.dynamodb.start()
        if self.external_sqs_endpoint:
            sqs_url = self.external_sqs_endpoint
        else:
            self.sqs = SqsLocal(port=0)
            sqs_url = self.sqs.start()

        api_port = free_port() if self.with_api else None
        webhook_secret = local_env.LOCAL_WEBHOOK_SECRET
        options: dict[str, Any] = {"webhook_secret": webhook_secret, **self.stripe_options}
        if api_port is not None:
            options.setdefault("webhook_url", f"http://{LOOPBACK}:{api_port}{WEBHOOK_PATH}")
        self.stripe = StripeEmulator(**options)
        stripe_url = self.stripe.start(LOOPBACK, 0)

        forced = local_env.chalice_config_environment(self.chalice_stage) if self.with_api else {}
        table_name = forced.get("TABLE_NAME", self.table_name)
        self.resources = create_local_resources(
            dynamodb_url, sqs_url, table_name, self.queue_prefix, local_env.DEFAULT_REGION,
            sync_queue_visibility_seconds=self.sync_queue_visibility_seconds,
            receive_wait_seconds=self.receive_wait_seconds,
        )
        env = local_env.local_environment(
            dynamodb_endpoint=dynamodb_url, sqs_endpoint=sqs_url, stripe_api_base=stripe_url,
            resources=self.resources, webhook_secret=str(options.get("webhook_secret") or webhook_secret))
        env.update(self.extra_env)
        if self.with_api:
            self.notes.extend(local_env.merge_chalice_environment(env, self.chalice_stage))
        self.env = env
        local_env.apply_environment(env)
        reset_app_binding()
        prepare_app()

        if api_port is not None:
            self._start_api(api_port)

    def _start_api(self, port: int) -> None:
        assert self._logdir is not None
        log_path = Path(self._logdir.name) / "api.log"
        command_env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(PROJECT_ROOT)}
        command_env.pop("CHALICE_WORKER", None)
        for attempt in range(3):
            if attempt:
                port = free_port()
                self.stripe.webhooks.configure(f"http://{LOOPBACK}:{port}{WEBHOOK_PATH}")
            url = f"http://{LOOPBACK}:{port}"
            with open(log_path, "wb") as log:
                self.api_process = subprocess.Popen(
                    api_server.command(LOOPBACK, port, self.chalice_stage),
                    cwd=str(PROJECT_ROOT), env=command_env, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                readiness_url = url + READINESS_PATH
                wait_until(lambda: http_status(readiness_url) == 200,  # noqa: B023 (called in this iteration)
                            time.monotonic() + STARTUP_TIMEOUT_S, self.api_process, "chalice local",
                            self.api_log)
            except StackError:
                self._stop_api()
                if "Address already in use" in self.api_log() and attempt < 2:
                    continue
                raise
            self.api_url = url
            return

    def api_log(self) -> str:
        if self._logdir is None:
            return ""
        path = Path(self._logdir.name) / "api.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def runner(self) -> Any:
        """An ``EventRunner`` on this stack with the app's handlers (built on first use)."""
        if self._runner is None:
            if self.resources is None:
                raise StackError("LocalStack is not started")
            from devstack.event_runner import EventRunner, load_app_handlers

            handlers = load_app_handlers("app")
            options = {**handlers.runner_options(), **self.runner_options}
            self._runner = EventRunner(
                handlers.stream_handler, handlers.sqs_handler,
                stream_arn=self.resources.stream_arn, queue_url=self.resources.queue_url,
                queue_arn=self.resources.queue_arn,
                dynamodb_streams_endpoint=self.env["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"],
                sqs_endpoint=self.env["AWS_ENDPOINT_URL_SQS"], region=self.env["AWS_DEFAULT_REGION"],
                stream_function_name=f"usage-invoicing-{self.env.get('STAGE', 'local')}-handle_table_changes",
                sqs_function_name=f"usage-invoicing-{self.env.get('STAGE', 'local')}-sync_invoices",
                **options,
            )
            from devstack.runner_group import with_deliveries

            waits = {k: v for k, v in options.items() if k in ("sqs_wait_seconds", "idle_backoff_s")}
            self._runner = with_deliveries(self._runner, "app", self.env, **waits)
        return self._runner

    @property
    def dynamodb_endpoint(self) -> str:
        return self.env["AWS_ENDPOINT_URL_DYNAMODB"]

    @property
    def sqs_endpoint(self) -> str:
        return self.env["AWS_ENDPOINT_URL_SQS"]

    @property
    def stripe_url(self) -> str:
        return self.env["STRIPE_API_BASE"]

    @property
    def tokens(self) -> dict[str, str]:
        return {"admin": self.env["DEV_ADMIN_TOKEN"], "usage": self.env["DEV_USAGE_TOKEN"]}

    def pids(self) -> dict[str, int]:
        """Processes this stack started (the API, DynamoDB Local's JVM) while they run."""
        found: dict[str, int] = {}
        if self.api_process is not None and self.api_process.poll() is None:
            found["api"] = self.api_process.pid
        if self.dynamodb is not None and self.dynamodb.pid is not None and self.dynamodb.running:
            found["dynamodb"] = self.dynamodb.pid
        return found

    def _stop_api(self) -> None:
        process, self.api_process = self.api_process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def stop(self) -> None:
        """Stop everything this stack started and restore the environment. Idempotent."""
        errors: list[BaseException] = []
        steps: list[Callable[[], None]] = []
        if self._runner is not None:
            steps.append(self._runner.stop)
        steps.append(self._stop_api)
        if self.stripe is not None:
            steps.append(self.stripe.stop)
        if self.sqs is not None:
            steps.append(self.sqs.stop)
        if self.dynamodb is not None:
            steps.append(self.dynamodb.stop)
        for step in steps:
            try:
                step()
            except BaseException as exc:  # keep stopping the rest
                errors.append(exc)
        self._runner = None
        self.api_url = None
        self.stripe = None
        if self._saved_env is not None:
            local_env.restore_environment(self._saved_env)
            self._saved_env = None
            try:
                from chalicelib.config import reload_settings
                from chalicelib.services.bootstrap import bind_storage

                reset_app_binding()
                bind_storage(reload_settings())
            except Exception as exc:
                errors.append(exc)
        if self._logdir is not None:
            self._logdir.cleanup()
            self._logdir = None
        if errors:
            raise errors[0]

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
