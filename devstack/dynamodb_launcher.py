"""A launcher that keeps DynamoDB Local on the loopback interface.

DynamoDB Local has no option to choose the listen address (its flags are -port, -inMemory, -dbPath,
-sharedDb, -cors, -delayTransientStatuses, -optimizeDbBeforeStartup, -disableTelemetry) and no JVM system
property changes it: it builds Jetty's ``Server(port)``, which listens on all interfaces. So a tiny
launcher class (compiled once with ``javac`` and cached) creates the server through DynamoDB Local's own
``ServerRunner.createServerFromCommandLineArgs`` and sets the host of its Jetty connector before starting
it. Without ``javac`` (a JRE-only install) there is no launcher.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

__all__ = ["LAUNCHER_CLASS", "LAUNCHER_UNSUPPORTED", "compiled_launcher", "launcher_cache_dir"]

# Reflection only, so it compiles without DynamoDB Local on the class path and
# fails with a clear message if a future release renames these internals.
LAUNCHER_CLASS = "LoopbackDynamoDBLocal"
LAUNCHER_SOURCE = """\
import java.lang.reflect.Field;

public final class LoopbackDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        String host = System.getProperty("devstack.dynamodb.host", "127.0.0.1");
        Object proxy;
        Object server;
        Object[] connectors;
        try {
            Class<?> runner = Class.forName(
                "software.amazon.dynamodb.services.local.main.ServerRunner");
            proxy = runner.getMethod("createServerFromCommandLineArgs", String[].class)
                .invoke(null, (Object) args);
            Field field = proxy.getClass().getDeclaredField("server");
            field.setAccessible(true);
            server = field.get(proxy);
            connectors = (Object[]) server.getClass().getMethod("getConnectors").invoke(server);
            if (connectors.length == 0) {
                throw new IllegalStateException("DynamoDB Local created no connector");
            }
            for (Object connector : connectors) {
                connector.getClass().getMethod("setHost", String.class).invoke(connector, host);
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            System.err.println("LOOPBACK-LAUNCHER-UNSUPPORTED: " + e);
            System.exit(3);
            return;
        }
        proxy.getClass().getMethod("start").invoke(proxy);
        System.out.println("DynamoDB Local bound to " + host);
    }
}
"""
LAUNCHER_UNSUPPORTED = "LOOPBACK-LAUNCHER-UNSUPPORTED"


def launcher_cache_dir() -> Path:
    """Where the compiled loopback launcher is kept (``<project>/.devstack/...``)."""
    return Path(__file__).resolve().parent.parent / ".devstack" / "dynamodb-local-launcher"


def _find_javac(java: str) -> str | None:
    sibling = Path(java).resolve().parent / "javac"
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return str(sibling)
    return shutil.which("javac")


_launcher_lock = threading.Lock()
_launcher_path: str | None = None
_launcher_failed = False


def compiled_launcher(java: str) -> str | None:
    """Directory holding the compiled launcher class, or None if unavailable.

    Compiled once and cached under :func:`launcher_cache_dir` (keyed by the
    source's hash); if that folder is not writable, a temporary one is used for
    the life of this process.
    """
    global _launcher_path, _launcher_failed
    with _launcher_lock:
        if _launcher_path is not None:
            return _launcher_path
        if _launcher_failed:
            return None
        digest = hashlib.sha256(LAUNCHER_SOURCE.encode()).hexdigest()[:16]
        cached = launcher_cache_dir() / digest
        if (cached / f"{LAUNCHER_CLASS}.class").is_file():
            _launcher_path = str(cached)
            return _launcher_path
        javac = _find_javac(java)
        if javac is None:
            _launcher_failed = True
            return None
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            build = tempfile.mkdtemp(prefix="build-", dir=cached.parent)
            persistent = True
        except OSError:
            build = tempfile.mkdtemp(prefix="dynamodb-local-launcher-")
            persistent = False
        source = Path(build) / f"{LAUNCHER_CLASS}.java"
        source.write_text(LAUNCHER_SOURCE)
        result = subprocess.run(
            [javac, "--release", "17", "-d", build, str(source)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            shutil.rmtree(build, ignore_errors=True)
            _launcher_failed = True
            warnings.warn(
                "could not compile the loopback launcher for DynamoDB Local: " + result.stdout.strip(),
                RuntimeWarning,
                stacklevel=3,
            )
            return None
        if not persistent:
            atexit.register(shutil.rmtree, build, True)
            _launcher_path = build
            return _launcher_path
        try:
            os.rename(build, cached)
        except OSError:  # another process cached it first
            shutil.rmtree(build, ignore_errors=True)
        _launcher_path = str(cached)
        return _launcher_path
