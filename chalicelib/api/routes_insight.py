"""Routes: Usage and cost over time, and the billing page that shows them."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint, Response

from .. import clock
from ..services.bootstrap import ready
from ..services.insight import usage_series
from ..services.orgs import require_profile
from ..web import billing_asset, billing_page
from .auth import org_read
from .csv_export import csv_response, usage_csv, wants_csv
from .edge import caller
from .errors import with_errors
from .insight import usage_json, usage_query
from .requests import path_org

routes = Blueprint(__name__)


@routes.route("/v1/orgs/{org}/usage", methods=["GET"])
@with_errors
def usage_over_time(org: str) -> Any:
    ready()
    caller(routes.current_request).require(org_read(org))
    query = usage_query(routes.current_request.query_params)
    as_csv = wants_csv(routes.current_request.query_params, routes.current_request.headers)
    profile, now = require_profile(path_org(org)), clock.now()
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
