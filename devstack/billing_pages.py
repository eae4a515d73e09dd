"""The billing page for the demo: a read-only link per organisation, and a screenshot of one.

Each link carries an org-reader token after '#', which browsers never send to a server; the page
reads the JSON API with it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from devstack.browser import chromium, show_on_phone, wait_until_loaded

SCREENSHOT_DIR = Path(__file__).resolve().parents[1] / "build" / "demo"


def reader_links(api_url: str, orgs: list[str]) -> dict[str, str]:
    """A new org-reader token per org (stored hashed, like any token), and the page address with it."""
    from chalicelib.config import settings
    from chalicelib.storage.tokens import TokenRepository

    tokens = TokenRepository(settings().token_pepper)
    links = {}
    for org in orgs:
        token = f"read-{secrets.token_urlsafe(18)}"
        tokens.put(token, f"{org} billing page", {f"org:{org}:read"}, datetime.now(UTC))
        links[org] = f"{api_url}/billing#org={org}&token={token}"
    return links


def screenshot(link: str, name: str, phone: bool = False) -> tuple[Path, str, list[str]]:
    """Load the page in headless chromium and save it; answers the path, how the page ended, console errors."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    with chromium(1280, 2600) as driver:
        if phone:
            show_on_phone(driver)
        state = wait_until_loaded(driver, link)
        driver.save_screenshot(str(path))
        errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return path, state, errors
