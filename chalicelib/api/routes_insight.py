"""Routes: Usage and cost over time, and the billing page that shows them."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint, Response

from .. import clock
from ..services.insight import usage_series
from ..services.orgs import require_profile
from ..web import billing_asset, billing_page
from .csv_export import csv_response, usage_csv, wants_csv
from .edge import readable_org
from .errors import with_errors
from .insight import usage_json, usage_query

routes = Blueprint(__name__)


@routes.route("/v1/orgs/{org}/usage", methods=["GET"])
@with_errors
def usage_over_time(org: str) -> Any:
    org = readable_org(routes.current_request, org)
    query = usage_query(routes.current_request.query_params)
    as_csv = wants_csv(routes.current_request.query_params, routes.current_request.headers)
    profile, now = require_profile(org), clock.now()
    series = usage_series(org, query.span, query.group_by, now)
    if as_csv:
        return csv_response(usage_csv(series, profile.currency), f"{org}-usage.csv")
    return usage_json(org, series, profile.currency, now)


@routes.route("/billing", methods=["GET"])
def billing() -> Response:
    return billing_page()


@routes.route("/billing/{asset}", methods=["GET"])
def billing_static(asset: str) -> Response:
    return billing_asset(asset)
