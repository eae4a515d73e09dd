"""Latency of the largest legal request: one `POST /v1/usage` of 500 events (the batch limit), each
on a line of its own, through the HTTP API (`chalice local`).

Each run uses a fresh organisation, so every request creates its invoice and 500 new lines: the
most work one request can ask for. Three requests of the same shape, untimed, warm the server
and DynamoDB Local's JIT first (without them the first timed runs measure compilation). Figures: the
median and the slowest of the runs. API Gateway gives up on a request after 29 s and the API
function's timeout is set from this figure (infra/chalice-merge.yaml), so the target is the
slowest run, not the median.
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from .common import create_orgs, egress_events, event_json, figure, median, rounded, run_id, say

EVENTS = 500  # chalicelib.api.schemas.MAX_BATCH
RUNS = 10
WARM_UP_REQUESTS = 3
TARGET_S = 2.0


def _post_one(session: requests.Session, url: str, org: str, tag: str) -> float:
    body = json.dumps({"events": [event_json(e) for e in egress_events(org, range(EVENTS), EVENTS, tag)]})
    started = time.perf_counter()
    response = session.post(url, data=body, timeout=60)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    counts = response.json()["counts"]
    if counts["accepted"] != EVENTS:
        raise RuntimeError(f"latency: not every event accepted: {counts}")
    return elapsed


def measure(api_url: str, usage_token: str, runs: int = RUNS) -> dict[str, Any]:
    orgs = create_orgs(f"bench-latency-{run_id()}", runs + WARM_UP_REQUESTS)
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {usage_token}", "Content-Type": "application/json"})
    url = api_url + "/v1/usage"
    for index, org in enumerate(orgs[:WARM_UP_REQUESTS]):
        _post_one(session, url, org, f"warm{index}")
    seconds = []
    for index, org in enumerate(orgs[WARM_UP_REQUESTS:]):
        seconds.append(_post_one(session, url, org, f"lat{index}"))
        say(f"  500-event request {index + 1}/{runs}: {seconds[-1]:.2f}s")
    params = {"events": EVENTS, "distinct_lines": EVENTS, "runs": runs, "warm_up_requests": WARM_UP_REQUESTS,
              "path": "POST /v1/usage on chalice local",
              "meter": "egress", "org": "fresh per run (new invoice and lines)"}
    worst = max(seconds)
    return {
        "p50_seconds": figure(rounded(median(seconds), 2), "s", params),
        "max_seconds": figure(rounded(worst, 2), "s", params, target=f"<= {TARGET_S}", met=worst <= TARGET_S,
                              runs_seconds=[rounded(s, 2) for s in seconds]),
    }
