"""Utilities shared by the infrastructure tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESOURCES_TEMPLATE = ROOT / "infra" / "resources.yaml"
MERGE_TEMPLATE = ROOT / "infra" / "chalice-merge.yaml"


def venv_tool(name: str) -> str:
    """A console script installed next to the running interpreter (else on PATH)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed")
    return found


def run_cfn_lint(*templates: Path) -> subprocess.CompletedProcess[str]:
    """cfn-lint with informational checks included; exit code 0 means clean."""
    return subprocess.run(
        [venv_tool("cfn-lint"), "--include-checks", "I", "--", *map(str, templates)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns a truthy value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        pause.wait(interval)
