"""`make demo`: the local stack end to end.

Three organisations, a month of usage over HTTP (with resends and late usage), support plans
(acme upgrading mid-month), a goodwill credit, a promotional credit spent over two months,
finalize, the Stripe sync through stream → queue → worker, each invoice beside its Stripe
copy, and a reconciliation verdict. Stripe collects (a card charged, a card declined, an
invoice emailed); acme's spend alerts and every org's invoice events reach their webhook
endpoints, and globex learns its payment failed. Exits 0 only if every invoice matched
Stripe to the cent and each customer heard what happened.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from chalicelib.domain.money import Money
from devstack.billing_pages import reader_links, screenshot
from devstack.demo_billing import PROMOTION_CENTS, last_month_with_promotion, print_credit_preview, subscribe
from devstack.demo_notify import BILLING, DECLINED, Customers
from devstack.local_stack import DEFAULT_TABLE_NAME, LocalStack

ORGS = {"acme": "Acme Robotics", "globex": "Globex Streaming", "initech": "Initech Labs"}
console = Console()


def simulated_events(org: str, now: datetime, rnd: random.Random, samples: int) -> list[dict[str, Any]]:
    """Hourly records since the start of the month: machines, volumes, egress, IPs, certificates."""
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    hours = max(1, int((now - start).total_seconds() // 3600))
    step = max(1, hours // samples)  # keep the demo quick: `samples` records per meter, each covering `step` hours
    events: list[dict[str, Any]] = []
    machines = [("web", "shared-cpu-1x", "iad", None), ("web", "shared-cpu-2x", "fra", "1024"),
                ("worker", "performance-1x", "nrt", None), ("api", "shared-cpu-1x", "gru", None)]
    for h in range(0, hours, step):
        ts = (start + timedelta(hours=h, minutes=rnd.randint(0, 59))).strftime("%Y-%m-%dT%H:%M:%SZ")
        for app, preset, region, memory in machines:
            attrs = {"preset": preset} | ({"memory_mb": memory} if memory else {})
            events.append({"id": f"m-{app}-{preset}-{region}-{h}", "org": org, "app": app,
                           "meter": "machine_runtime", "quantity": 3600 * step, "region": region,
                           "attributes": attrs, "timestamp": ts})
        events.append({"id": f"vol-{h}", "org": org, "app": "db", "meter": "volume_storage",
                       "quantity": 10 * step, "region": "iad", "timestamp": ts})
        events.append({"id": f"snap-{h}", "org": org, "app": "db", "meter": "snapshot_storage",
                       "quantity": 15 * step, "region": "iad", "timestamp": ts})
        for region in ("iad", "nrt", "bom"):
            events.append({"id": f"egress-{region}-{h}", "org": org, "app": "web", "meter": "egress",
                           "quantity": f"{rnd.uniform(0.1, 3):.3f}", "region": region, "timestamp": ts})
        events.append({"id": f"ip-{h}", "org": org, "app": "web", "meter": "ipv4_address",
                       "quantity": step, "timestamp": ts})
    first = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    events.append({"id": "certs", "org": org, "app": "web", "meter": "certificate_single", "quantity": 14,
                   "timestamp": first})
    events.append({"id": "wildcard", "org": org, "app": "web", "meter": "certificate_wildcard", "quantity": 1,
                   "timestamp": first})
    return events


def post(url: str, token: str, body: Any, method: str = "POST") -> requests.Response:
    return requests.request(method, url, data=json.dumps(body), timeout=60,
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


def print_invoice(invoice: dict[str, Any]) -> None:
    table = Table(title=f"{invoice['org']} · upcoming invoice {invoice['number']} · {invoice['period']}",
                  show_lines=False)
    for column, justify in (("category", "left"), ("line", "left"), ("quantity", "right"),
                            ("free", "right"), ("amount", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for line in invoice["lines"]:
        table.add_row(line["category"], line["description"], f"{line['display_quantity']} {line['display_unit']}",
                      line["free_quantity"] if line["free_quantity"] != "0" else "", line["amount"]["display"])
    console.print(table)
    by_category = ", ".join(f"{k} {v['display']}" for k, v in invoice["breakdown"]["by_category"].items())
    console.print(f"  by category: {by_category}")
    console.print(f"  month to date [bold]{invoice['month_to_date']['display']}[/], projected month end "
                  f"{invoice['projected_total']['display']} (as of {invoice['as_of']})\n")


def get(url: str, token: str) -> dict[str, Any]:
    response = requests.get(url, timeout=30, headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    return dict(response.json())


def stripe_copy(stack: LocalStack, stripe_id: str | None) -> dict[str, Any] | None:
    if not stripe_id:
        return None
    return dict(stack.stripe.invoice(stripe_id))


def print_side_by_side(ours: dict[str, Any], theirs: dict[str, Any] | None) -> bool:
    """Our invoice grouped by category, next to the Stripe copy's lines; True when they match to the cent."""
    stripe_lines = {}
    for line in (theirs or {}).get("lines", {}).get("data", []):
        stripe_lines[(line.get("metadata") or {}).get("line_key")] = line["amount"]
    table = Table(title=f"{ours['org']} · invoice {ours['number']} · {ours['period']} · {ours['status']} · "
                        f"Stripe {ours['sync']['stripe_invoice_number'] or '-'}")
    for column, justify in (("category", "left"), ("line", "left"), ("quantity", "right"),
                            ("ours", "right"), ("Stripe", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for line in ours["lines"]:
        cents = stripe_lines.get(line["id"])
        theirs_text = "-" if cents is None else Money(cents).display()
        table.add_row(line["category"], line["description"], f"{line['display_quantity']} {line['display_unit']}",
                      line["amount"]["display"], theirs_text)
    total_theirs = None if theirs is None else theirs["total"]
    # Stripe emails or charges an invoice with something due; one with nothing due it settles at once.
    settled = ("open", "paid") if ours["total"]["cents"] else ("paid",)
    table.add_row("", "[bold]total[/]", "", f"[bold]{ours['total']['display']}[/]",
                  "-" if total_theirs is None else f"[bold]${total_theirs / 100:,.2f}[/]")
    console.print(table)
    same_lines = all(stripe_lines.get(line["id"]) == line["amount"]["cents"] for line in ours["lines"])
    return theirs is not None and total_theirs == ours["total"]["cents"] and same_lines \
        and len(stripe_lines) == len(ours["lines"]) and theirs["status"] in settled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=120, help="usage records per meter over the month")
    parser.add_argument("--dynamodb-endpoint", help="use this running DynamoDB Local instead of starting one")
    args = parser.parse_args(argv)
    rnd = random.Random(7)
    now = datetime.now(UTC)
    # On a server that is already running, a table of its own keeps the demo's fixed org names apart.
    table = f"demo-{uuid.uuid4().hex[:8]}" if args.dynamodb_endpoint else DEFAULT_TABLE_NAME
    with LocalStack(api=True, dynamodb_endpoint=args.dynamodb_endpoint, table_name=table) as stack:
        api, tokens = stack.api_url, stack.tokens
        admin, usage = tokens["admin"], tokens["usage"]
        console.print(f"local stack up: API {api}, Stripe emulator {stack.stripe_url}")
        for org, name in ORGS.items():
            post(f"{api}/v1/orgs/{org}", admin, {"name": name, "email": f"billing@{org}.test", **BILLING[org]},
                 method="PUT").raise_for_status()
        last_month = last_month_with_promotion("initech", now, console)
        subscribe(api, admin, "acme", now, upgrade=True, console=console)
        subscribe(api, admin, "globex", now, upgrade=False, console=console)
        customers = Customers(api or "", admin, console)
        customers.set_up(ORGS, stack.stripe)
        batches = []
        for org in ORGS:
            events = simulated_events(org, now, rnd, args.samples)
            batches += [events[i:i + 100] for i in range(0, len(events), 100)]
        resends = rnd.sample(batches, k=max(1, len(batches) // 10))  # producers retry: must change nothing
        counts = {"accepted": 0, "duplicate": 0, "conflict": 0, "rejected": 0}
        with Progress(console=console) as progress:
            task = progress.add_task("posting a month of usage", total=len(batches) + len(resends))
            for batch in batches + resends:
                response = post(f"{api}/v1/usage", usage, {"events": batch})
                response.raise_for_status()
                for key, value in response.json()["counts"].items():
                    counts[key] += value
                progress.advance(task)
        console.print(f"usage: {counts}")
        stack.runner.run_until_idle(120)  # the stream evaluates acme's budget; alerts go out
        print_invoice(get(f"{api}/v1/orgs/acme/invoices/upcoming", admin))
        print_credit_preview(get(f"{api}/v1/orgs/initech/invoices/upcoming", admin), console)
        customers.print_alerts("acme")
        links = reader_links(api, list(ORGS))
        shot, page_state, page_errors = screenshot(links["acme"], "billing-acme")
        console.print("billing pages (each link carries a read-only token after '#'; live while the demo runs):")
        for org, link in links.items():
            console.print(f"  {org}: {link}", soft_wrap=True)
        console.print(f"billing page of acme in chromium: {'loaded' if page_state == 'true' else 'FAILED'}, "
                      f"{len(page_errors)} console errors; screenshot {shot}")

        invoice_ids = {}
        for org in ORGS:
            upcoming = get(f"{api}/v1/orgs/{org}/invoices/upcoming", admin)
            invoice_ids[org] = upcoming["id"]
        credit = {"client_id": "goodwill-1", "kind": "credit", "amount_cents": 500,
                  "description": "Goodwill credit for the iad incident"}
        post(f"{api}/v1/orgs/globex/invoices/{invoice_ids['globex']}/items", admin, credit).raise_for_status()
        for org, invoice_id in invoice_ids.items():
            post(f"{api}/v1/orgs/{org}/invoices/{invoice_id}/finalize", admin, {}).raise_for_status()
        console.print(f"finalized {len(invoice_ids)} invoices for {now:%Y-%m}")
        late = [{"id": "late-egress-1", "org": "acme", "app": "web", "meter": "egress", "quantity": "2.5",
                 "region": "iad", "timestamp": (now - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")}]
        late_answer = post(f"{api}/v1/usage", usage, {"events": late}).json()["results"][0]
        console.print(f"late usage for {now:%Y-%m} went to {late_answer['invoice_id']} (late={late_answer['late']})")

        with console.status("syncing finalized invoices to Stripe (stream → queue → worker)"):
            deadline = datetime.now(UTC) + timedelta(seconds=120)
            while datetime.now(UTC) < deadline:
                stack.runner.run_until_idle(60)
                states = [get(f"{api}/v1/orgs/{o}/invoices/{i}", admin)["sync"]["state"]
                          for o, i in [*invoice_ids.items(), ("initech", last_month)]]
                if all(state in ("synced", "failed") for state in states):
                    break
        told = customers.wait_for_payments(
            lambda: stack.runner.run_until_idle(60),
            lambda org: get(f"{api}/v1/orgs/{org}/invoices/{invoice_ids[org]}", admin))
        customers.print_received()
        matched, shown = 0, {}
        for org, invoice_id in [("initech", last_month), *invoice_ids.items()]:
            ours = shown[(org, invoice_id)] = get(f"{api}/v1/orgs/{org}/invoices/{invoice_id}", admin)
            if print_side_by_side(ours, stripe_copy(stack, ours["sync"]["stripe_invoice_id"])):
                matched += 1
        upgraded = {line["kind"] for line in shown[("acme", invoice_ids["acme"])]["lines"]
                    if line["category"] == "support"} == {"recurring"} and sum(
            line["category"] == "support" for line in shown[("acme", invoice_ids["acme"])]["lines"]) == 3
        promotion = [shown[("initech", i)]["credits_applied"]["cents"] for i in (last_month, invoice_ids["initech"])]
        console.print(f"acme's support upgrade: {'credited and charged to the second' if upgraded else 'MISSING'}; "
                      f"initech's promotion spent over two months: {promotion[0] / 100:,.2f} + "
                      f"{promotion[1] / 100:,.2f} of {PROMOTION_CENTS / 100:,.2f}", soft_wrap=True)
        from chalicelib.domain.periods import Period
        from chalicelib.services.reconcile import check_period
        from chalicelib.services.sync_worker import default_gateway

        report = check_period(Period.of(now), default_gateway(), datetime.now(UTC))
        report = check_period(Period.of(now).previous(), default_gateway(), datetime.now(UTC), report)
        ours_matched = [name for name in report.matched if name.split("/")[0] in ORGS]
        console.print(f"reconciliation: {len(ours_matched)} matched, {len(report.mismatched)} mismatched, "
                      f"{len(report.unchecked)} unchecked")
        told = told and "budget.threshold_crossed" in customers.types("acme") and \
            all("invoice.synced" in customers.types(org) for org in ORGS)
        console.print(f"customers told: {'yes' if told else 'NO'} ({DECLINED}'s declined card reached it as "
                      f"invoice.payment_failed)")
        customers.stop()
        ok = (counts["rejected"] == 0 and counts["duplicate"] > 0 and late_answer["late"] and told and upgraded
              and all(promotion) and sum(promotion) == PROMOTION_CENTS
              and matched == len(shown) and len(ours_matched) == len(shown) and not report.mismatched)
        ok = ok and page_state == "true" and not page_errors
    console.print(f"demo {'passed' if ok else 'FAILED'}: {matched} of {len(shown)} invoices synced to Stripe and "
                  f"matched to the cent")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
