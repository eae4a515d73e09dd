"""The long-running local stack for development: DynamoDB Local, moto's SQS, the Stripe emulator, the
API (`chalice local`) and the event runner, each as a background process.

    python -m devstack.stack up        # start what is not running, print endpoints and tokens
    python -m devstack.stack status    # what runs (exit code 3 if something does not)
    python -m devstack.stack down      # stop everything (SIGTERM, then SIGKILL after a deadline)

``up`` starts each part with a pid file and a log in ``.devstack/run/`` (see
``devstack/supervisor.py``), creates the table and queues from ``infra/resources.yaml``,
seeds the development tokens, writes ``.devstack/run/env`` (``source`` it) and
waits until each part answers. Running it again starts only what is missing, and
restarts the API and the event runner if their environment changed (for example
a restarted DynamoDB Local has a new stream ARN). The API runs as ``chalice local
--stage local``; ``devstack/local_stack.py`` says why the stage matters.

The same parts in one process, on free ports, for tests and the demo: ``LocalStack``
(``devstack/local_stack.py``, importable from here too).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from devstack import api_server
from devstack import env as local_env
from devstack.dev_tokens import prepare_app
from devstack.event_runner import EXIT_NO_HANDLERS
from devstack.local_aws import LOOPBACK, readiness_probe
from devstack.local_stack import (
    DEFAULT_CHALICE_STAGE,
    DEFAULT_TABLE_NAME,
    READINESS_PATH,
    WEBHOOK_PATH,
    LocalStack,
    http_status,
)
from devstack.supervisor import PROJECT_ROOT, Part, StackError, Supervisor, tail

__all__ = ["DEFAULT_PORTS", "PROJECT_ROOT", "LocalStack", "StackError", "main"]

RUN_DIR = PROJECT_ROOT / ".devstack" / "run"
DEFAULT_PORTS = {"api": 8000, "dynamodb": 8001, "sqs": 8002, "stripe": 12111}
DEFAULT_QUEUE_PREFIX = "usage-invoicing-local"
ORDER = ("dynamodb", "sqs", "stripe", "api", "runner")
TITLES = {
    "dynamodb": "DynamoDB Local",
    "sqs": "SQS (moto)",
    "stripe": "Stripe emulator",
    "api": "API (chalice local)",
    "runner": "Event runner",
}
EXIT_NOT_RUNNING = 3


def _python() -> str:
    candidate = PROJECT_ROOT / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def _parts(args: argparse.Namespace, supervisor: Supervisor, env: dict[str, str] | None) -> dict[str, Part]:
    python = _python()
    base = {**os.environ, "PYTHONUNBUFFERED": "1"}
    base.pop("CHALICE_WORKER", None)
    ports = {name: getattr(args, f"{name}_port") for name in DEFAULT_PORTS}
    urls = {name: f"http://{LOOPBACK}:{port}" for name, port in ports.items()}

    def server(name: str, module: str, ready: Callable[[], bool], *options: str) -> Part:
        return Part(name, TITLES[name], [python, "-m", module, "--port", str(ports[name]), *options], base,
                    [module, f"--port {ports[name]}"], ready, urls[name])

    parts = {
        "dynamodb": server("dynamodb", "devstack.dynamodb_local", readiness_probe("dynamodb", urls["dynamodb"])),
        "sqs": server("sqs", "devstack.sqs_local", readiness_probe("sqs", urls["sqs"])),
        "stripe": server("stripe", "devstack.stripe_emulator",
                         lambda: http_status(urls["stripe"] + "/_emulator/health") == 200,
                         "--webhook-url", urls["api"] + WEBHOOK_PATH, "--webhook-secret", args.webhook_secret),
    }
    if env is not None:
        app_env = {**base, **env, "PYTHONPATH": str(PROJECT_ROOT)}
        ready_file = supervisor.path("runner.ready")
        parts["api"] = Part(
            "api", TITLES["api"],
            api_server.command(LOOPBACK, ports["api"], args.chalice_stage, python),
            app_env, ["devstack.api_server", f"--port {ports['api']}"],
            lambda: http_status(urls["api"] + READINESS_PATH) == 200, urls["api"], env)
        parts["runner"] = Part(
            "runner", TITLES["runner"], [python, "-m", "devstack.event_runner_cli", "--ready-file", str(ready_file)],
            app_env, ["devstack.event_runner_cli"], ready_file.exists, None, env)
    return parts


def _cmd_up(args: argparse.Namespace) -> int:
    supervisor = Supervisor(args.run_dir, args.timeout)
    report: dict[str, str] = {}
    try:
        infra = _parts(args, supervisor, None)
        for name in ("dynamodb", "sqs", "stripe"):
            report[name] = supervisor.ensure(infra[name])

        from devstack.resources import create_local_resources

        table_name = local_env.chalice_config_environment(args.chalice_stage).get("TABLE_NAME", args.table_name)
        resources = create_local_resources(str(infra["dynamodb"].url), str(infra["sqs"].url), table_name,
                                           args.queue_prefix, local_env.DEFAULT_REGION,
                                           sync_queue_visibility_seconds=args.sync_queue_visibility)
        env = local_env.local_environment(
            dynamodb_endpoint=str(infra["dynamodb"].url), sqs_endpoint=str(infra["sqs"].url),
            stripe_api_base=str(infra["stripe"].url), resources=resources, webhook_secret=args.webhook_secret)
        notes = local_env.merge_chalice_environment(env, args.chalice_stage)
        local_env.apply_environment(env)
        prepare_app()
        local_env.write_env_file(supervisor.path("env"), env)
        supervisor.state["resources"] = asdict(resources)
        supervisor.state["chalice_stage"] = args.chalice_stage
        supervisor.save_state()

        parts = _parts(args, supervisor, env)
        report["api"] = supervisor.ensure(parts["api"])
        if supervisor.running("runner") is None or supervisor.fingerprint("runner") != parts["runner"].fingerprint:
            supervisor.path("runner.ready").unlink(missing_ok=True)
        try:
            report["runner"] = supervisor.ensure(parts["runner"])
        except StackError as exc:
            process = supervisor.started_now.get("runner")
            if process is None or process.returncode != EXIT_NO_HANDLERS:
                raise
            supervisor.stop("runner")
            supervisor.save_state()
            report["runner"] = "not started: " + tail(str(exc), 1)
    except Exception as exc:
        print(f"local stack: {exc}", file=sys.stderr)
        print("stopping what this command started", file=sys.stderr)
        supervisor.stop_started_now(ORDER)
        return 1

    urls = {name: (supervisor.components().get(name) or {}).get("url") for name in ORDER}
    print("Local stack is up")
    for name in ORDER:
        print(f"  {TITLES[name]:<20} {urls.get(name) or '':<24} {report.get(name, '')}")
    print(f"  table {resources.table_name}, stream {resources.stream_arn}")
    print(f"  sync queue {resources.queue_url}")
    print(f"  DLQ        {resources.dlq_url}")
    print(f"  Stripe webhooks -> {urls['api']}{WEBHOOK_PATH} (secret {args.webhook_secret})")
    print(f"Admin token: {env['DEV_ADMIN_TOKEN']}")
    print(f"Usage token: {env['DEV_USAGE_TOKEN']}")
    print(f"Environment: source {_display(supervisor.path('env'))}")
    print(f"Logs:        {_display(args.run_dir)}/*.log")
    for note in notes:
        print(f"Note: {note}")
    return 0


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _cmd_down(args: argparse.Namespace) -> int:
    supervisor = Supervisor(args.run_dir, args.timeout)
    for name in reversed(ORDER):
        if supervisor.pid_path(name).exists() or name in supervisor.components():
            print(f"{TITLES[name]:<20} {supervisor.stop(name)}")
    for name in ("stack.json", "env", "runner.ready"):
        supervisor.path(name).unlink(missing_ok=True)
    print("Local stack is down")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    supervisor = Supervisor(args.run_dir, args.timeout)
    all_running = True
    for name in ORDER:
        info = supervisor.components().get(name) or {}
        pid = supervisor.running(name)
        if pid is not None:
            print(f"{TITLES[name]:<20} running  pid {pid:<8} {info.get('url') or ''}")
            continue
        all_running = False
        stale = supervisor.read_pid(name)
        state = f"stopped (stale pid file: {stale})" if stale is not None else "stopped"
        print(f"{TITLES[name]:<20} {state}")
    resources = supervisor.state.get("resources")
    if resources:
        print(f"table {resources['table_name']}, queue {resources['queue_url']}")
    return 0 if all_running else EXIT_NOT_RUNNING


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.stack", description="Local stack: up, down, status.")
    parser.add_argument("command", choices=["up", "down", "status"])
    for name, port in DEFAULT_PORTS.items():
        parser.add_argument(f"--{name}-port", type=int, default=port)
    parser.add_argument("--table-name", default=DEFAULT_TABLE_NAME)
    parser.add_argument("--queue-prefix", default=DEFAULT_QUEUE_PREFIX)
    parser.add_argument("--chalice-stage", default=DEFAULT_CHALICE_STAGE,
                        help="stage for chalice local (its config.json variables override ours)")
    parser.add_argument("--webhook-secret", default=local_env.LOCAL_WEBHOOK_SECRET)
    parser.add_argument("--sync-queue-visibility", type=int, metavar="SECONDS",
                        help="visibility timeout of the sync queue (default: the template's, 6x the worker timeout)")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for each part")
    parser.add_argument("--run-dir", type=Path, default=Path(os.environ.get("DEVSTACK_RUN_DIR") or RUN_DIR),
                        help="pid files, logs and the env file (default .devstack/run)")
    args = parser.parse_args(argv)
    args.run_dir = args.run_dir.resolve()
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    return {"up": _cmd_up, "down": _cmd_down, "status": _cmd_status}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
