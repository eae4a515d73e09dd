"""The whole local stack: DynamoDB Local, moto's SQS, the Stripe emulator, the API and the event runner.

Command line (long-running, for development)::

    python -m devstack.stack up        # start what is not running, print endpoints and tokens
    python -m devstack.stack status    # what runs (exit code 3 if something does not)
    python -m devstack.stack down      # stop everything (SIGTERM, then SIGKILL after a deadline)

``up`` starts each part as a background process with a pid file and a log in
``.devstack/run/``, creates the table and queues from ``infra/resources.yaml``,
seeds the development tokens, writes ``.devstack/run/env`` (``source`` it) and
waits until each part answers. Running it again starts only what is missing, and
restarts the API and the event runner if their environment changed (for example
a restarted DynamoDB Local has a new stream ARN).

Python API (tests and the demo), everything on free ports and stopped on exit::

    with LocalStack() as stack:
        requests.get(stack.api_url + "/v1/openapi.json")
        stack.runner.run_until_idle()      # delivers stream records / SQS messages

``LocalStack`` runs DynamoDB Local (a Java child process), moto's SQS server and the
Stripe emulator in this process's threads, and the API as a ``chalice local``
subprocess; it applies the environment to ``os.environ`` (restored by ``stop()``).

The API runs as ``chalice local --stage local`` by default. ``chalice local``
copies the ``environment_variables`` of ``.chalice/config.json`` (top level and the
stage's) over the process environment, so with ``--stage dev`` it would replace
TABLE_NAME and STAGE. A stage without its own section (``local``) gets only the
top-level ones. Whatever the chosen stage forces is merged into the stack's
environment, so the API, the event runner and ``.devstack/run/env`` agree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devstack import env as local_env

__all__ = [
    "DEFAULT_PORTS",
    "LocalStack",
    "StackError",
    "chalice_config_environment",
    "main",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = PROJECT_ROOT / ".devstack" / "run"
LOOPBACK = "127.0.0.1"
DEFAULT_PORTS = {"api": 8000, "dynamodb": 8001, "sqs": 8002, "stripe": 12111}
DEFAULT_TABLE_NAME = "usage-invoicing-local"
DEFAULT_QUEUE_PREFIX = "usage-invoicing-local"
DEFAULT_CHALICE_STAGE = "local"
WEBHOOK_PATH = "/v1/stripe/webhook"
READINESS_PATH = "/v1/openapi.json"
STOP_TIMEOUT_S = 10.0
ORDER = ("dynamodb", "sqs", "stripe", "api", "runner")
TITLES = {
    "dynamodb": "DynamoDB Local",
    "sqs": "SQS (moto)",
    "stripe": "Stripe emulator",
    "api": "API (chalice local)",
    "runner": "Event runner",
}
EXIT_NOT_RUNNING = 3


class StackError(RuntimeError):
    """A part of the local stack could not be started or reached."""


# -- helpers shared by the CLI and LocalStack ------------------------------------------------


def chalice_config_environment(stage: str, project_root: Path = PROJECT_ROOT) -> dict[str, str]:
    """What ``chalice local --stage <stage>`` writes over the process environment.

    chalice 1.34 (cli/factory.py ``load_chalice_app``) updates ``os.environ`` with
    the merged ``environment_variables``: top level, then ``stages.<stage>``.
    """
    path = project_root / ".chalice" / "config.json"
    if not path.exists():
        return {}
    config = json.loads(path.read_text())
    merged = dict(config.get("environment_variables") or {})
    merged.update(((config.get("stages") or {}).get(stage) or {}).get("environment_variables") or {})
    return {name: str(value) for name, value in merged.items()}


def _venv_executable(name: str) -> str:
    candidate = PROJECT_ROOT / ".venv" / "bin" / name
    if candidate.exists():
        return str(candidate)
    sibling = Path(sys.executable).parent / name
    if sibling.exists():
        return str(sibling)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"{name} not found (expected {candidate}); run `make install`")
    return found


def _python() -> str:
    candidate = PROJECT_ROOT / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def _http_status(url: str, timeout: float = 2.0) -> int | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def _boto_ok(service: str, endpoint: str) -> bool:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=local_env.DEFAULT_REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(connect_timeout=1, read_timeout=3, retries={"total_max_attempts": 1}),
    )
    try:
        if service == "dynamodb":
            client.list_tables(Limit=1)
        else:
            client.list_queues()
        return True
    except Exception:
        return False


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _wait_until(check: Callable[[], bool], deadline: float, process: subprocess.Popen[bytes] | None,
                what: str, log: Callable[[], str]) -> None:
    """Poll ``check`` until true; fail early if ``process`` exits."""
    delay = 0.05
    while True:
        if check():
            return
        if process is not None and process.poll() is not None:
            raise StackError(f"{what} exited with code {process.returncode}:\n{_tail(log())}")
        if time.monotonic() >= deadline:
            raise StackError(f"{what} did not become ready in time:\n{_tail(log())}")
        time.sleep(delay)  # readiness backoff, bounded by the deadline
        delay = min(delay * 2, 0.5)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _seed() -> None:
    """Bind the models to the table and store the development tokens (env already applied)."""
    from chalicelib.config import reload_settings
    from chalicelib.services.bootstrap import bind_storage, seed_dev_tokens

    bind_storage(reload_settings())
    seed_dev_tokens(reload_settings())


def _reset_app_binding() -> None:
    """Forget the app module's per-process binding, so it re-reads the settings."""
    module = sys.modules.get("app")
    bound = getattr(module, "_bound", None)
    if isinstance(bound, list):
        bound.clear()


def _merge_chalice_environment(env: dict[str, str], stage: str, notes: list[str]) -> None:
    forced = chalice_config_environment(stage)
    for name, value in sorted(forced.items()):
        if name in env and env[name] != value:
            notes.append(f"{name}={value!r} from .chalice/config.json (stage {stage}) replaces {env[name]!r}")
    env.update(forced)


# -- process management for the CLI ---------------------------------------------------------


def _pid_path(name: str) -> Path:
    return RUN_DIR / f"{name}.pid"


def _log_path(name: str) -> Path:
    return RUN_DIR / f"{name}.log"


def _state_path() -> Path:
    return RUN_DIR / "stack.json"


def _env_path() -> Path:
    return RUN_DIR / "env"


def _runner_ready_path() -> Path:
    return RUN_DIR / "runner.ready"


def _read_pid(name: str) -> int | None:
    try:
        return int(_pid_path(name).read_text().strip())
    except (OSError, ValueError):
        return None


def _cmdline(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 3 of /proc/<pid>/stat is the state; Z = exited but not yet reaped.
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _matches(pid: int, markers: Sequence[str]) -> bool:
    """``pid`` is alive and its command line holds every marker (guards against reused pids)."""
    if sys.platform.startswith("linux"):
        cmdline = _cmdline(pid)
        return cmdline is not None and all(marker in cmdline for marker in markers)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie has)."""
    if sys.platform.startswith("linux"):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_pid(pid: int, markers: Sequence[str], timeout_s: float = STOP_TIMEOUT_S,
              child: subprocess.Popen[bytes] | None = None, port: int | None = None) -> str:
    """SIGTERM, then SIGKILL after ``timeout_s``; then wait for ``port`` to close. Returns what happened."""
    if not _matches(pid, markers):
        return "not running"
    os.kill(pid, signal.SIGTERM)
    result = "stopped"
    deadline = time.monotonic() + timeout_s
    # Only the pid from here on: while a process exits its command line reads empty.
    while _alive(pid) and not (child is not None and child.poll() is not None):
        if time.monotonic() >= deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            result = "killed after SIGTERM timeout"
            end = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < end:
                time.sleep(0.05)
            break
        time.sleep(0.05)
    if child is not None:
        child.poll()  # reap
    end = time.monotonic() + 5
    while port is not None and _port_in_use(port) and time.monotonic() < end:
        time.sleep(0.05)
    return result


@dataclass
class _Part:
    name: str
    command: list[str]
    env: dict[str, str]
    markers: list[str]
    ready: Callable[[], bool]
    url: str | None = None
    app_env: dict[str, str] | None = None  # the stack's own variables (not the inherited ones)

    @property
    def fingerprint(self) -> str:
        """Changes when the command or the stack's variables change (then `up` restarts the part)."""
        digest = hashlib.sha256(json.dumps([self.command, sorted((self.app_env or {}).items())]).encode())
        return digest.hexdigest()[:16]


class _Supervisor:
    """Starts/stops the CLI's background processes by pid file."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.state = self._load_state()
        self.started_now: dict[str, subprocess.Popen[bytes]] = {}

    @staticmethod
    def _load_state() -> dict[str, Any]:
        try:
            return dict(json.loads(_state_path().read_text()))
        except (OSError, ValueError):
            return {}

    def save_state(self) -> None:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        _state_path().write_text(json.dumps(self.state, indent=2, sort_keys=True))

    def components(self) -> dict[str, Any]:
        components: dict[str, Any] = self.state.setdefault("components", {})
        return components

    def running(self, name: str) -> int | None:
        pid = _read_pid(name)
        info = self.components().get(name) or {}
        if pid is not None and _matches(pid, info.get("markers") or [name]):
            return pid
        return None

    def ensure(self, part: _Part) -> str:
        """Start ``part`` unless it runs with the same command and environment."""
        pid = self.running(part.name)
        info = self.components().get(part.name) or {}
        if pid is not None and info.get("fingerprint") == part.fingerprint and part.ready():
            return f"already running (pid {pid})"
        restarted = pid is not None
        if pid is not None:
            _stop_pid(pid, info.get("markers") or [part.name], port=info.get("port"))
        _pid_path(part.name).unlink(missing_ok=True)
        port = None
        if part.url is not None:
            port = int(part.url.rsplit(":", 1)[1].split("/")[0])
            if _port_in_use(port):
                raise StackError(f"{TITLES[part.name]}: port {port} is already in use by another program; "
                                 f"choose another with --{part.name}-port")
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        log_path = _log_path(part.name)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                part.command,
                cwd=str(PROJECT_ROOT),
                env=part.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this command; `down` stops it
            )
        self.started_now[part.name] = process
        _pid_path(part.name).write_text(f"{process.pid}\n")
        self.components()[part.name] = {
            "pid": process.pid,
            "fingerprint": part.fingerprint,
            "markers": part.markers,
            "url": part.url,
            "port": port,
            "log": str(log_path),
        }
        self.save_state()
        _wait_until(part.ready, time.monotonic() + self.timeout_s, process, TITLES[part.name],
                    lambda: log_path.read_text(errors="replace") if log_path.exists() else "")
        return f"{'restarted' if restarted else 'started'} (pid {process.pid})"

    def stop(self, name: str) -> str:
        pid = _read_pid(name)
        info = self.components().get(name) or {}
        result = "not running"
        if pid is not None:
            result = _stop_pid(pid, info.get("markers") or [name], child=self.started_now.get(name),
                               port=info.get("port"))
        _pid_path(name).unlink(missing_ok=True)
        self.components().pop(name, None)
        return result

    def stop_started_now(self) -> None:
        for name in reversed(ORDER):
            if name in self.started_now:
                self.stop(name)
        self.save_state()


def _parts(args: argparse.Namespace, env: dict[str, str] | None) -> dict[str, _Part]:
    python = _python()
    base = {**os.environ, "PYTHONUNBUFFERED": "1"}
    base.pop("CHALICE_WORKER", None)
    ports = {name: getattr(args, f"{name}_port") for name in DEFAULT_PORTS}
    urls = {name: f"http://{LOOPBACK}:{port}" for name, port in ports.items()}
    parts = {
        "dynamodb": _Part("dynamodb", [python, "-m", "devstack.dynamodb_local", "--port", str(ports["dynamodb"])],
                          base, ["devstack.dynamodb_local", f"--port {ports['dynamodb']}"],
                          lambda: _boto_ok("dynamodb", urls["dynamodb"]), urls["dynamodb"]),
        "sqs": _Part("sqs", [python, "-m", "devstack.sqs_local", "--port", str(ports["sqs"])],
                     base, ["devstack.sqs_local", f"--port {ports['sqs']}"],
                     lambda: _boto_ok("sqs", urls["sqs"]), urls["sqs"]),
        "stripe": _Part("stripe", [python, "-m", "devstack.stripe_emulator", "--port", str(ports["stripe"]),
                                   "--webhook-url", urls["api"] + WEBHOOK_PATH,
                                   "--webhook-secret", args.webhook_secret],
                        base, ["devstack.stripe_emulator", f"--port {ports['stripe']}"],
                        lambda: _http_status(urls["stripe"] + "/_emulator/health") == 200, urls["stripe"]),
    }
    if env is not None:
        app_env = {**base, **env, "PYTHONPATH": str(PROJECT_ROOT)}
        parts["api"] = _Part(
            "api",
            [_venv_executable("chalice"), "local", "--host", LOOPBACK, "--port", str(ports["api"]),
             "--stage", args.chalice_stage, "--no-autoreload"],
            app_env, ["chalice", "local", f"--port {ports['api']}"],
            lambda: _http_status(urls["api"] + READINESS_PATH) == 200, urls["api"], env)
        parts["runner"] = _Part(
            "runner",
            [python, "-m", "devstack.event_runner", "--ready-file", str(_runner_ready_path())],
            app_env, ["devstack.event_runner"], _runner_ready_path().exists, None, env)
    return parts


def _cmd_up(args: argparse.Namespace) -> int:
    supervisor = _Supervisor(args.timeout)
    notes: list[str] = []
    report: dict[str, str] = {}
    try:
        infra = _parts(args, None)
        for name in ("dynamodb", "sqs", "stripe"):
            report[name] = supervisor.ensure(infra[name])

        from devstack.resources import create_local_resources

        table_name = chalice_config_environment(args.chalice_stage).get("TABLE_NAME", args.table_name)
        resources = create_local_resources(str(infra["dynamodb"].url), str(infra["sqs"].url), table_name,
                                           args.queue_prefix, local_env.DEFAULT_REGION,
                                           sync_queue_visibility_seconds=args.sync_queue_visibility)
        env = local_env.local_environment(
            dynamodb_endpoint=str(infra["dynamodb"].url), sqs_endpoint=str(infra["sqs"].url),
            stripe_api_base=str(infra["stripe"].url), resources=resources,
            webhook_secret=args.webhook_secret)
        _merge_chalice_environment(env, args.chalice_stage, notes)
        local_env.apply_environment(env)
        _seed()
        local_env.write_env_file(_env_path(), env)
        supervisor.state["resources"] = asdict(resources)
        supervisor.state["chalice_stage"] = args.chalice_stage
        supervisor.save_state()

        parts = _parts(args, env)
        report["api"] = supervisor.ensure(parts["api"])
        if supervisor.running("runner") is None or (supervisor.components().get("runner") or {}).get(
                "fingerprint") != parts["runner"].fingerprint:
            _runner_ready_path().unlink(missing_ok=True)
        try:
            report["runner"] = supervisor.ensure(parts["runner"])
        except StackError as exc:
            process = supervisor.started_now.get("runner")
            if process is None or process.returncode != 3:  # EXIT_NO_HANDLERS
                raise
            supervisor.stop("runner")
            supervisor.save_state()
            report["runner"] = "not started: " + _tail(str(exc), 1)
    except Exception as exc:
        print(f"local stack: {exc}", file=sys.stderr)
        print("stopping what this command started", file=sys.stderr)
        supervisor.stop_started_now()
        return 1

    urls = {name: (supervisor.components().get(name) or {}).get("url") for name in ORDER}
    print("Local stack is up")
    for name in ORDER:
        where = urls.get(name) or ""
        print(f"  {TITLES[name]:<20} {where:<24} {report.get(name, '')}")
    print(f"  table {resources.table_name}, stream {resources.stream_arn}")
    print(f"  sync queue {resources.queue_url}")
    print(f"  DLQ        {resources.dlq_url}")
    print(f"  Stripe webhooks -> {urls['api']}{WEBHOOK_PATH} (secret {args.webhook_secret})")
    print(f"Admin token: {env['DEV_ADMIN_TOKEN']}")
    print(f"Usage token: {env['DEV_USAGE_TOKEN']}")
    print(f"Environment: source {_display(_env_path())}")
    print(f"Logs:        {_display(RUN_DIR)}/*.log")
    for note in notes:
        print(f"Note: {note}")
    return 0


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _cmd_down(args: argparse.Namespace) -> int:
    supervisor = _Supervisor(args.timeout)
    for name in reversed(ORDER):
        if _pid_path(name).exists() or name in supervisor.components():
            print(f"{TITLES[name]:<20} {supervisor.stop(name)}")
    supervisor.save_state()
    for path in (_state_path(), _env_path(), _runner_ready_path()):
        path.unlink(missing_ok=True)
    print("Local stack is down")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    supervisor = _Supervisor(args.timeout)
    all_running = True
    for name in ORDER:
        info = supervisor.components().get(name) or {}
        pid = supervisor.running(name)
        if pid is not None:
            print(f"{TITLES[name]:<20} running  pid {pid:<8} {info.get('url') or ''}")
            continue
        all_running = False
        stale = _read_pid(name)
        state = f"stopped (stale pid file: {stale})" if stale is not None else "stopped"
        print(f"{TITLES[name]:<20} {state}")
    resources = supervisor.state.get("resources")
    if resources:
        print(f"table {resources['table_name']}, queue {resources['queue_url']}")
    return 0 if all_running else EXIT_NOT_RUNNING


def main(argv: Sequence[str] | None = None) -> int:
    global RUN_DIR
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
    parser.add_argument("--run-dir", default=os.environ.get("DEVSTACK_RUN_DIR") or str(RUN_DIR),
                        help="pid files, logs and the env file (default .devstack/run)")
    args = parser.parse_args(argv)
    RUN_DIR = Path(args.run_dir).resolve()
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    return {"up": _cmd_up, "down": _cmd_down, "status": _cmd_status}[args.command](args)


# -- LocalStack: the same parts in-process, on free ports --------------------------------------


class LocalStack:
    """The local stack on free ports for tests and the demo.

    ``api=False`` skips the HTTP API. ``start_runner=True`` starts the event
    runner's background threads; otherwise ``.runner`` is built on first use and
    driven by the caller (``run_until_idle()``, ``poll_once()``).
    ``runner_options`` go to ``EventRunner`` (e.g. ``max_retries``),
    ``stripe_options`` to ``StripeEmulator`` (e.g. ``global_rate_limit``),
    ``extra_env`` is added to the environment (the chalice stage's config.json
    variables still win for the API process). ``dynamodb_endpoint`` /
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
        start_runner: bool = False,
        runner_options: Mapping[str, Any] | None = None,
        stripe_options: Mapping[str, Any] | None = None,
        admin_token: str | None = None,
        usage_token: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        dynamodb_endpoint: str | None = None,
        sqs_endpoint: str | None = None,
        startup_timeout_s: float = 90.0,
    ) -> None:
        self.external_dynamodb_endpoint = dynamodb_endpoint
        self.external_sqs_endpoint = sqs_endpoint
        self.table_name = table_name
        self.queue_prefix = queue_prefix or f"usage-invoicing-local-{uuid.uuid4().hex[:8]}"
        self.sync_queue_visibility_seconds = sync_queue_visibility_seconds
        self.receive_wait_seconds = receive_wait_seconds
        self.with_api = api
        self.chalice_stage = chalice_stage
        self.start_runner = start_runner
        self.runner_options = dict(runner_options or {})
        self.stripe_options = dict(stripe_options or {})
        self.admin_token = admin_token
        self.usage_token = usage_token
        self.extra_env = dict(extra_env or {})
        self.startup_timeout_s = startup_timeout_s

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

        api_port = _free_port() if self.with_api else None
        webhook_secret = local_env.LOCAL_WEBHOOK_SECRET
        options: dict[str, Any] = {"webhook_secret": webhook_secret, **self.stripe_options}
        if api_port is not None:
            options.setdefault("webhook_url", f"http://{LOOPBACK}:{api_port}{WEBHOOK_PATH}")
        self.stripe = StripeEmulator(**options)
        stripe_url = self.stripe.start(LOOPBACK, 0)

        forced = chalice_config_environment(self.chalice_stage) if self.with_api else {}
        table_name = forced.get("TABLE_NAME", self.table_name)
        self.resources = create_local_resources(
            dynamodb_url, sqs_url, table_name, self.queue_prefix, local_env.DEFAULT_REGION,
            sync_queue_visibility_seconds=self.sync_queue_visibility_seconds,
            receive_wait_seconds=self.receive_wait_seconds,
        )
        env = local_env.local_environment(
            dynamodb_endpoint=dynamodb_url, sqs_endpoint=sqs_url, stripe_api_base=stripe_url,
            resources=self.resources, admin_token=self.admin_token, usage_token=self.usage_token,
            webhook_secret=str(options.get("webhook_secret") or webhook_secret), extra=self.extra_env)
        if self.with_api:
            _merge_chalice_environment(env, self.chalice_stage, self.notes)
            for note in self.notes:
                if any(note.startswith(name + "=") for name in self.extra_env):
                    warnings.warn(f"LocalStack: {note}", RuntimeWarning, stacklevel=3)
        self.env = env
        local_env.apply_environment(env)
        _reset_app_binding()
        _seed()

        if api_port is not None:
            self._start_api(api_port)
        if self.start_runner:
            self.runner.start()

    def _start_api(self, port: int) -> None:
        assert self._logdir is not None
        log_path = Path(self._logdir.name) / "api.log"
        command_env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(PROJECT_ROOT)}
        command_env.pop("CHALICE_WORKER", None)
        for attempt in range(3):
            if attempt:
                port = _free_port()
                self.stripe.webhooks.configure(f"http://{LOOPBACK}:{port}{WEBHOOK_PATH}")
            url = f"http://{LOOPBACK}:{port}"
            with open(log_path, "wb") as log:
                self.api_process = subprocess.Popen(
                    [_venv_executable("chalice"), "local", "--host", LOOPBACK, "--port", str(port),
                     "--stage", self.chalice_stage, "--no-autoreload"],
                    cwd=str(PROJECT_ROOT), env=command_env, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                readiness_url = url + READINESS_PATH
                _wait_until(lambda: _http_status(readiness_url) == 200,  # noqa: B023 (called in this iteration)
                            time.monotonic() + self.startup_timeout_s, self.api_process, "chalice local",
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

                _reset_app_binding()
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


if __name__ == "__main__":
    sys.exit(main())
