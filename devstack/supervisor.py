"""Background processes that outlive the command that started them, for `python -m devstack.stack`.

Each part runs in its own session with a pid file and a log in the run directory; `stack.json` there
remembers how each was started (command and environment, as a fingerprint) so that `up` again restarts
only what changed. A pid is trusted only while the process's command line still holds the part's
markers: pids are reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.local_aws import port_in_use

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STOP_TIMEOUT_S = 10.0


class StackError(RuntimeError):
    """A part of the local stack could not be started or reached."""


def executable(name: str) -> str:
    """A console script of the project's virtualenv (else next to this interpreter, else on PATH)."""
    for candidate in (PROJECT_ROOT / ".venv" / "bin" / name, Path(sys.executable).parent / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"{name} not found (expected {PROJECT_ROOT / '.venv' / 'bin' / name}); run `make install`")
    return found


def wait_until(check: Callable[[], bool], deadline: float, process: subprocess.Popen[bytes] | None,
               what: str, log: Callable[[], str]) -> None:
    """Poll `check` until true; fail early if `process` exits."""
    delay = 0.05
    while True:
        if check():
            return
        if process is not None and process.poll() is not None:
            raise StackError(f"{what} exited with code {process.returncode}:\n{tail(log())}")
        if time.monotonic() >= deadline:
            raise StackError(f"{what} did not become ready in time:\n{tail(log())}")
        time.sleep(delay)  # readiness backoff, bounded by the deadline
        delay = min(delay * 2, 0.5)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _state_of(pid: int) -> str | None:
    """Field 3 of /proc/<pid>/stat (Z = exited but not yet reaped), None if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return None


def alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie has)."""
    if sys.platform.startswith("linux"):
        return _state_of(pid) not in (None, "Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def matches(pid: int, markers: Sequence[str]) -> bool:
    """`pid` is alive and its command line holds every marker (guards against reused pids)."""
    if not sys.platform.startswith("linux"):
        return alive(pid)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return alive(pid) and all(marker in cmdline for marker in markers)


def stop_pid(pid: int, markers: Sequence[str], timeout_s: float = STOP_TIMEOUT_S,
             child: subprocess.Popen[bytes] | None = None, port: int | None = None) -> str:
    """SIGTERM, then SIGKILL after `timeout_s`; then wait for `port` to close. Returns what happened."""
    if not matches(pid, markers):
        return "not running"
    os.kill(pid, signal.SIGTERM)
    result = "stopped"
    deadline = time.monotonic() + timeout_s
    # Only the pid from here on: while a process exits its command line reads empty.
    while alive(pid) and not (child is not None and child.poll() is not None):
        if time.monotonic() >= deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            result = "killed after SIGTERM timeout"
            end = time.monotonic() + 5
            while alive(pid) and time.monotonic() < end:
                time.sleep(0.05)
            break
        time.sleep(0.05)
    if child is not None:
        child.poll()  # reap
    end = time.monotonic() + 5
    while port is not None and port_in_use(port) and time.monotonic() < end:
        time.sleep(0.05)
    return result


@dataclass
class Part:
    name: str
    title: str
    command: list[str]
    env: dict[str, str]
    markers: list[str]
    ready: Callable[[], bool]
    url: str | None = None
    app_env: dict[str, str] = field(default_factory=dict)  # the stack's own variables (not the inherited ones)

    @property
    def fingerprint(self) -> str:
        """Changes when the command or the stack's variables change (then `up` restarts the part)."""
        digest = hashlib.sha256(json.dumps([self.command, sorted(self.app_env.items())]).encode())
        return digest.hexdigest()[:16]

    @property
    def port(self) -> int | None:
        return int(self.url.rsplit(":", 1)[1].split("/")[0]) if self.url else None


class Supervisor:
    """Starts and stops the parts' background processes by pid file, in `run_dir`."""

    def __init__(self, run_dir: Path, timeout_s: float) -> None:
        self.run_dir = run_dir
        self.timeout_s = timeout_s
        self.state = self._load_state()
        self.started_now: dict[str, subprocess.Popen[bytes]] = {}

    def path(self, name: str) -> Path:
        return self.run_dir / name

    def pid_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def read_pid(self, name: str) -> int | None:
        try:
            return int(self.pid_path(name).read_text().strip())
        except (OSError, ValueError):
            return None

    def _load_state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.path("stack.json").read_text()))
        except (OSError, ValueError):
            return {}

    def save_state(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path("stack.json").write_text(json.dumps(self.state, indent=2, sort_keys=True))

    def components(self) -> dict[str, Any]:
        components: dict[str, Any] = self.state.setdefault("components", {})
        return components

    def running(self, name: str) -> int | None:
        pid = self.read_pid(name)
        info = self.components().get(name) or {}
        if pid is not None and matches(pid, info.get("markers") or [name]):
            return pid
        return None

    def fingerprint(self, name: str) -> str | None:
        return (self.components().get(name) or {}).get("fingerprint")

    def ensure(self, part: Part) -> str:
        """Start `part` unless it runs with the same command and environment."""
        pid = self.running(part.name)
        info = self.components().get(part.name) or {}
        if pid is not None and info.get("fingerprint") == part.fingerprint and part.ready():
            return f"already running (pid {pid})"
        restarted = pid is not None
        if pid is not None:
            stop_pid(pid, info.get("markers") or [part.name], port=info.get("port"))
        self.pid_path(part.name).unlink(missing_ok=True)
        if part.port is not None and port_in_use(part.port):
            raise StackError(f"{part.title}: port {part.port} is already in use by another program; "
                             f"choose another with --{part.name}-port")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.path(f"{part.name}.log")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(part.command, cwd=str(PROJECT_ROOT), env=part.env, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)  # outlives this command; `down` stops it
        self.started_now[part.name] = process
        self.pid_path(part.name).write_text(f"{process.pid}\n")
        self.components()[part.name] = {"pid": process.pid, "fingerprint": part.fingerprint,
                                         "markers": part.markers, "url": part.url, "port": part.port,
                                         "log": str(log_path)}
        self.save_state()
        wait_until(part.ready, time.monotonic() + self.timeout_s, process, part.title,
                   lambda: log_path.read_text(errors="replace") if log_path.exists() else "")
        return f"{'restarted' if restarted else 'started'} (pid {process.pid})"

    def stop(self, name: str) -> str:
        pid = self.read_pid(name)
        info = self.components().get(name) or {}
        result = "not running"
        if pid is not None:
            result = stop_pid(pid, info.get("markers") or [name], child=self.started_now.get(name),
                              port=info.get("port"))
        self.pid_path(name).unlink(missing_ok=True)
        self.components().pop(name, None)
        return result

    def stop_started_now(self, order: Sequence[str]) -> None:
        for name in reversed(order):
            if name in self.started_now:
                self.stop(name)
        self.save_state()
