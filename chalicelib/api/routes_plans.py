"""Routes: Subscriptions to plans, and prepaid credit."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint, Response

from .. import clock
from ..domain.credits import CreditReason
from ..domain.errors import ValidationFailed
from ..services.bootstrap import ready
from ..services.credits import CreditService
from ..services.orgs import require_profile
from ..services.subscriptions import SubscriptionService
from .auth import ADMIN
from .credits import CreditGrantIn, grant_json, statement_json
from .edge import api_route, caller, json_body, readable_org
from .requests import path_org
from .subscriptions import PlanCancelIn, PlanChangeIn, subscriptions_json

routes = Blueprint(__name__)


@api_route(routes, "/v1/orgs/{org}/subscriptions", "GET")
def get_subscriptions(org: str) -> dict[str, Any]:
    current = ready()
    org = readable_org(routes.current_request, org)
    profile = require_profile(org)
    return subscriptions_json(org, SubscriptionService(current).timeline(org), profile.currency, clock.now())


@api_route(routes, "/v1/orgs/{org}/subscriptions", "POST")
def change_plan(org: str) -> Response:
    current = ready()
    caller(routes.current_request).require(ADMIN)
    profile, now = require_profile(path_org(org)), clock.now()  # no such org (404) before a bad body (422)
    data = PlanChangeIn.model_validate(json_body(routes.current_request))
    timeline, created = SubscriptionService(current).change(org, data.change_id, None, data.plan,
                                                            data.effective_at or now, now)
    return Response(subscriptions_json(org, timeline, profile.currency, now), status_code=201 if created else 200)


@api_route(routes, "/v1/orgs/{org}/subscriptions/cancel", "POST")
def cancel_plan(org: str) -> Response:
    current = ready()
    caller(routes.current_request).require(ADMIN)
    profile, now = require_profile(path_org(org)), clock.now()
    data = PlanCancelIn.model_validate(json_body(routes.current_request))
    timeline, created = SubscriptionService(current).change(org, data.change_id, data.family, None,
                                                            data.effective_at or now, now)
    return Response(subscriptions_json(org, timeline, profile.currency, now), status_code=201 if created else 200)


@api_route(routes, "/v1/orgs/{org}/credits", "POST")
def grant_credit(org: str) -> Response:
    ready()
    caller(routes.current_request).require(ADMIN)
    profile, now = require_profile(path_org(org)), clock.now()
    data = CreditGrantIn.model_validate(json_body(routes.current_request))
    if data.expires_at is not None and data.expires_at <= now:
        raise ValidationFailed("expires_at is in the past")
    grant, created = CreditService().grant(org, data.client_id, data.amount_cents, CreditReason(data.reason),
                                           data.description, data.expires_at, now)
    return Response(grant_json(grant, profile.currency), status_code=201 if created else 200)


@api_route(routes, "/v1/orgs/{org}/credits", "GET")
def get_credits(org: str) -> dict[str, Any]:
    org = readable_org(routes.current_request, org)
    profile = require_profile(org)
    return statement_json(org, CreditService().statement(org), profile.currency)
