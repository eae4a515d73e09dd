"""`GET /v1/orgs/{org}/usage` and the CSV answers, through the app's routing on DynamoDB Local: the series
agree with the invoice to the cent, ranges are bounded, and every refusal is a clear 4xx."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from acceptance_support import assert_error, bearer, post_usage, usage_event

NOV_RANGE = "from=2026-11-01&to=2026-12-01"


@pytest.fixture
def used(api, org, tokens, pinned_clock) -> str:
    """November usage over several days and hours, by two apps, with a free allowance that runs out."""
    pinned_clock.now = datetime(2026, 11, 15, 12, tzinfo=UTC)
    events = []
    for day in range(1, 15):
        for hour in (3, 9, 17):
            ts = f"2026-11-{day:02d}T{hour:02d}:20:00Z"
            events += [
                usage_event(org, f"eg-{day}-{hour}", quantity="1.337", timestamp=ts),
                usage_event(org, f"vm-{day}-{hour}", meter="machine_runtime", app="api", region="fra",
                            quantity="3600", attributes={"preset": "shared-cpu-1x"}, timestamp=ts),
                usage_event(org, f"sn-{day}-{hour}", meter="snapshot_storage", app="db", quantity="250",
                            timestamp=ts),
            ]
    response = post_usage(api, tokens["usage"], events)
    assert response.json_body["counts"]["accepted"] == len(events), response.json_body
    return org


def get(api: Any, token: str, path: str, **headers: str) -> Any:
    return api.http.get(path, headers={**bearer(token), **headers})


def upcoming(api: Any, token: str, org: str) -> dict[str, Any]:
    return get(api, token, f"/v1/orgs/{org}/invoices/upcoming").json_body


def test_each_lines_series_costs_add_up_to_its_amount(api, used, reader_token):
    invoice = upcoming(api, reader_token, used)
    body = get(api, reader_token, f"/v1/orgs/{used}/usage?{NOV_RANGE}&group_by=line").json_body
    amounts = {line["id"]: line["amount"]["cents"] for line in invoice["lines"]}
    assert {s["group"]: s["cost"]["cents"] for s in body["series"]} == amounts
    assert {s["group"]: sum(p["cost_cents"] for p in s["points"]) for s in body["series"]} == amounts
    assert body["cost"]["cents"] == sum(p["cost_cents"] for p in body["totals"]) == invoice["total"]["cents"]
    snapshots = next(s for s in body["series"] if "snapshot" in s["label"].lower())
    # 10 GB-months free (7,200 GB-hours) goes to the first days: 750 GB-hours a day, so 9 free days and change.
    assert [p["cost_cents"] for p in snapshots["points"][:9]] == [0] * 9 and snapshots["points"][10]["cost_cents"] > 0
    assert snapshots["quantities"] == {"GB-months": "14.583333"}  # 10,500 GB-hours / 720


def test_grouped_by_category_and_app_the_series_match_the_invoice_breakdowns(api, used, reader_token):
    invoice = upcoming(api, reader_token, used)
    for group_by, breakdown in (("category", "by_category"), ("app", "by_app")):
        body = get(api, reader_token, f"/v1/orgs/{used}/usage?{NOV_RANGE}&group_by={group_by}").json_body
        assert {s["group"]: s["cost"]["cents"] for s in body["series"]} == {
            key: money["cents"] for key, money in invoice["breakdown"][breakdown].items()}
        assert len(body["totals"]) == 30 and body["granularity"] == "day"


def test_hours_of_a_day_add_up_to_the_day(api, used, reader_token):
    daily = get(api, reader_token, f"/v1/orgs/{used}/usage?{NOV_RANGE}&group_by=app").json_body
    hourly = get(api, reader_token, f"/v1/orgs/{used}/usage?from=2026-11-10T00:00:00Z&to=2026-11-11T00:00:00Z"
                                    "&granularity=hour&group_by=app").json_body
    assert len(hourly["totals"]) == 24
    for series in hourly["series"]:
        day = next(s for s in daily["series"] if s["group"] == series["group"])["points"][9]
        assert day["start"].startswith("2026-11-10")
        assert sum(p["cost_cents"] for p in series["points"]) == day["cost_cents"]
        assert [p["start"][11:13] for p in series["points"] if p["quantities"]] == ["03", "09", "17"]
    machine_hour = next(s for s in hourly["series"] if s["group"] == "api")["points"][9]
    assert machine_hour["quantities"] == {"hours": "1"}


def test_usage_as_csv_has_the_documented_columns_and_the_same_figures(api, used, reader_token):
    from chalicelib.api.csv_export import USAGE_COLUMNS

    body = get(api, reader_token, f"/v1/orgs/{used}/usage?{NOV_RANGE}&group_by=category").json_body
    for response in (get(api, reader_token, f"/v1/orgs/{used}/usage?{NOV_RANGE}&group_by=category&format=csv"),
                     get(api, reader_token, f"/v1/orgs/{used}/usage?{NOV_RANGE}&group_by=category",
                         Accept="text/csv, application/json;q=0.5")):
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        rows = list(csv.DictReader(io.StringIO(response.body.decode())))
        assert tuple(rows[0]) == USAGE_COLUMNS
        for series in body["series"]:
            mine = [row for row in rows if row["group"] == series["group"]]
            assert sum(int(row["cost_cents"]) for row in mine) == series["cost"]["cents"]
            assert {row["period_start"] for row in mine} == {p["start"] for p in series["points"] if p["quantities"]}


def test_an_invoice_as_csv_lists_its_lines(api, used, reader_token):
    from chalicelib.api.csv_export import INVOICE_LINE_COLUMNS

    invoice = upcoming(api, reader_token, used)
    for path in (f"/v1/orgs/{used}/invoices/upcoming?format=csv", f"/v1/orgs/{used}/invoices/{invoice['id']}"):
        response = get(api, reader_token, path, Accept="text/csv")
        assert response.status_code == 200, response.body
        assert response.headers["Content-Disposition"] == f'attachment; filename="{used}-{invoice["id"]}.csv"'
        rows = list(csv.DictReader(io.StringIO(response.body.decode())))
        assert tuple(rows[0]) == INVOICE_LINE_COLUMNS
        assert {r["line_id"]: int(r["amount_cents"]) for r in rows} == {
            line["id"]: line["amount"]["cents"] for line in invoice["lines"]}
        assert {r["line_id"]: r["free_quantity"] for r in rows} == {
            line["id"]: line["free_quantity"] for line in invoice["lines"]}


def test_a_voided_invoice_is_no_longer_shown_as_cost(api, used, tokens, reader_token):
    voided = api.http.post(f"/v1/orgs/{used}/invoices/inv_202611/void", headers=bearer(tokens["admin"]), body="{}")
    assert voided.status_code == 200, voided.body
    body = get(api, reader_token, f"/v1/orgs/{used}/usage?{NOV_RANGE}").json_body
    assert body["series"] == [] and body["cost"]["cents"] == 0


@pytest.mark.parametrize("query, problem", [
    ("from=2026-11-01T00:00:00Z&to=2026-11-08T01:00:00Z&granularity=hour", "at most 7 days"),
    ("from=2026-01-01&to=2026-06-01", "at most 92 days"),
    ("from=2026-11-01", "are required"),
    ("from=2026-11-01&to=2026-11-02&granularity=minute", "granularity"),
    ("from=2026-11-01&to=2026-11-02&group_by=colour", "group_by"),
    ("from=2026-11-01T10:30:00Z&to=2026-11-02T00:00:00Z&granularity=hour", "must each start an hour"),
    ("from=2026-11-01T10:00:00Z&to=2026-11-02&granularity=day", "must each start a day"),
    ("from=yesterday&to=2026-11-02", "`from` must be a date"),
    ("from=2026-11-31&to=2026-12-02", "`from` must be a date"),
    ("from=0001-01-01T00:00:00%2B01:00&to=2026-12-02", "`from` must be a date"),
    ("from=2026-11-03&to=2026-11-02", "after `from`"),
    ("from=2026-11-01&to=2026-11-02&format=xml", "format"),
])
def test_bad_queries_are_refused_with_a_clear_4xx(api, org, reader_token, query, problem):
    error = assert_error(get(api, reader_token, f"/v1/orgs/{org}/usage?{query}"), 422, "validation_failed")
    assert problem in error["message"]


def test_usage_is_for_the_orgs_readers_only(api, org, reader_token, make_org, tokens):
    other = make_org()
    assert_error(get(api, reader_token, f"/v1/orgs/{other}/usage?{NOV_RANGE}"), 403, "forbidden")
    assert_error(api.http.get(f"/v1/orgs/{org}/usage?{NOV_RANGE}"), 401, "unauthorized")
    assert_error(get(api, tokens["admin"], f"/v1/orgs/no-such-org-here/usage?{NOV_RANGE}"), 404, "not_found")
