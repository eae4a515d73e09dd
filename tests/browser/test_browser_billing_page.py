"""The billing page in a real browser (Debian's chromium): it shows what the JSON API says, to the cent,
draws the charts' series and points from it, logs no console error, and reads well at 375 px wide."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By

from devstack.browser import show_on_phone, wait_until_loaded

NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"


@pytest.fixture
def billed(org: str, pinned_clock: Any) -> str:
    """An org with a finalized October, November usage by three apps, and late October usage."""
    from chalicelib.api.requests import usage_batch
    from chalicelib.config import settings
    from chalicelib.services.invoices import InvoiceService
    from chalicelib.services.usage import record_usage

    def send(events: list[dict[str, Any]]) -> None:
        results = record_usage(usage_batch({"events": events}), pinned_clock.now, settings())
        assert all(r.status == "accepted" for r in results), results

    def event(event_id: str, app: str, meter: str, quantity: str, ts: str, **extra: Any) -> dict[str, Any]:
        return {"id": event_id, "org": org, "app": app, "meter": meter, "quantity": quantity, "timestamp": ts, **extra}

    pinned_clock.now = datetime(2026, 10, 31, 23, tzinfo=UTC)
    send([event("oct-1", "web", "egress", "40", "2026-10-20T10:00:00Z", region="iad")])
    InvoiceService().finalize(org, "inv_202610", pinned_clock.now)
    pinned_clock.now = NOW
    november = []
    for day in range(1, 15):
        ts = f"2026-11-{day:02d}T{8 + day % 5:02d}:15:00Z"
        november += [
            event(f"web-{day}", "web", "machine_runtime", str(3600 * (4 + day % 3)), ts, region="iad",
                  attributes={"preset": "performance-1x"}),
            event(f"eg-{day}", "web", "egress", f"{day * 1.5:.1f}", ts, region="nrt"),
            event(f"db-{day}", "db", "volume_storage", "2400", ts, region="iad"),
            event(f"wk-{day}", "worker", "machine_runtime", "7200", ts, region="iad",
                  attributes={"preset": "shared-cpu-1x"}),  # $0.00000075 a second: the API writes 7.5E-7
        ]
    november.append(event("late-oct", "web", "egress", "12.5", "2026-10-31T22:00:00Z", region="iad"))
    send(november)
    return org


def api(url: str, token: str, path: str) -> dict[str, Any]:
    response = requests.get(url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    response.raise_for_status()
    return dict(response.json())


def drawn_points(browser: Any, chart: str) -> dict[str, dict[str, int]]:
    """Each drawn series' bars: series → day → cents."""
    out: dict[str, dict[str, int]] = {}
    for group in browser.find_elements(By.CSS_SELECTOR, f"#{chart} svg g.series"):
        out[group.get_attribute("data-series")] = {
            rect.get_attribute("data-day"): int(rect.get_attribute("data-cents"))
            for rect in group.find_elements(By.TAG_NAME, "rect")}
    return out


def expected_points(usage: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {s["group"]: {p["start"][:10]: p["cost_cents"] for p in s["points"] if p["cost_cents"] > 0}
            for s in usage["series"]}


def test_the_billing_page_shows_what_the_api_says(app_url, browser, billed, reader_token):
    month = "from=2026-11-01&to=2026-12-01&granularity=day"
    upcoming = api(app_url, reader_token, f"/v1/orgs/{billed}/invoices/upcoming")
    by_category = api(app_url, reader_token, f"/v1/orgs/{billed}/usage?{month}&group_by=category")
    by_app = api(app_url, reader_token, f"/v1/orgs/{billed}/usage?{month}&group_by=app")
    invoices = api(app_url, reader_token, f"/v1/orgs/{billed}/invoices")

    loaded = wait_until_loaded(browser, f"{app_url}/billing#org={billed}&token={reader_token}")
    assert loaded == "true", browser.find_element(By.ID, "status").text
    assert "token" not in browser.current_url  # the fragment is dropped from the address bar and history

    # The upcoming invoice: total, month to date, projection, as-of.
    text = {name: browser.find_element(By.ID, f"upcoming-{name}").text for name in ("total", "mtd", "projected")}
    assert text == {"total": upcoming["total"]["display"], "mtd": upcoming["month_to_date"]["display"],
                    "projected": upcoming["projected_total"]["display"]}
    assert browser.find_element(By.ID, "upcoming-as-of").get_attribute("datetime") == upcoming["as_of"]

    # Every line, under its app, with its amount; the late line labelled.
    for line in upcoming["lines"]:
        row = browser.find_element(By.CSS_SELECTOR, f"tbody[data-app='{line['app']}'] tr[data-line='{line['id']}']")
        cells = row.find_elements(By.TAG_NAME, "td")
        assert cells[-1].text == line["amount"]["display"]
        assert cells[0].text == f"{line['display_quantity']} {line['display_unit']}"
        assert "E-" not in cells[1].text  # prices in plain digits: $0.00001564368, not $1.564368E-5
        assert ("Late usage for 2026-10" in row.text) == line["late"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#lines tr[data-line]")) == len(upcoming["lines"])
    assert any(line["late"] for line in upcoming["lines"])

    # The charts: the API's series and points, bar for bar; the daily figures day for day.
    assert drawn_points(browser, "chart-category") == expected_points(by_category)
    assert drawn_points(browser, "chart-app") == expected_points(by_app)
    assert set(expected_points(by_app)) == {"db", "web", "worker"}
    figures = browser.find_elements(By.CSS_SELECTOR, "#chart-category table.figures td[data-total]")
    daily = [p["cost_cents"] for p in by_category["totals"]]
    assert [int(cell.get_attribute("data-total")) for cell in figures] == daily
    # Late usage is drawn on the days it happened (October), so this month's bars add up to the rest.
    late = sum(line["amount"]["cents"] for line in upcoming["lines"] if line["late"])
    assert sum(daily) == upcoming["total"]["cents"] - late and late > 0
    assert f"${late / 100:.2f}" in browser.find_element(By.ID, "charts-note").text

    # Past invoices with status, sync state, payment status and number.
    rows = browser.find_elements(By.CSS_SELECTOR, "#invoices tbody tr")
    closed = [i["id"] for i in invoices["invoices"] if i["status"] != "draft"]  # the draft is the upcoming one
    assert [r.get_attribute("data-invoice") for r in rows] == closed == ["inv_202610"]
    october = next(i for i in invoices["invoices"] if i["id"] == "inv_202610")
    cells = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#invoices tr[data-invoice='inv_202610'] > *")]
    assert cells[:6] == [october["number"], "2026-10", "finalized", october["sync"]["state"],
                         october["payment_status"], october["total"]["display"]]

    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []

    # Readable at 375 px: nothing wider than the screen but the tables' own scroll boxes.
    show_on_phone(browser)
    try:
        assert wait_until_loaded(browser, f"{app_url}/billing#org={billed}&token={reader_token}") == "true"
        assert browser.execute_script("return window.innerWidth") == 375
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 375
        assert drawn_points(browser, "chart-app") == expected_points(by_app)
        assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "billing-page-375.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_wrong_token_gets_a_readable_message(app_url, browser, org):
    assert wait_until_loaded(browser, f"{app_url}/billing#org={org}&token=not-a-token") == "error"
    assert "the bearer token is not valid (unauthorized)" in browser.find_element(By.ID, "status").text
    assert browser.find_element(By.ID, "upcoming").get_attribute("hidden") is not None
    # The only console line is the browser's own note of the refused request, not a script error.
    severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert all("401" in message for message in severe), severe


def test_the_page_and_its_assets_are_served_with_no_outside_reference(app_url):
    page = requests.get(f"{app_url}/billing", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    for asset, kind in (("billing.js", "text/javascript"), ("billing.css", "text/css")):
        response = requests.get(f"{app_url}/billing/{asset}", timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(kind)
        assert "http://" not in response.text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in response.text
    assert "https://" not in page.text and "http://" not in page.text
    missing = requests.get(f"{app_url}/billing/secrets.txt", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
