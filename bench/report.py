"""results.json and the printed table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

TITLES = {
    "ingest_throughput": "1. Ingestion throughput",
    "write_units": "2. DynamoDB write units per event",
    "upcoming_invoice": "3. Upcoming invoice read time",
    "monthly_totals": "4. Monthly totals, items read",
    "stripe_requests_per_invoice": "5. Stripe requests per invoice",
    "month_end_sync": "6. Month-end sync",
    "sync_memory": "7. Sync worker memory",
    "request_latency": "8. Largest request latency",
    "alert_latency": "9. Spend alert latency",
}


def is_figure(value: Any) -> bool:
    return isinstance(value, dict) and "value" in value and "unit" in value


def target_summary(sections: dict[str, Any]) -> dict[str, list[str]]:
    summary: dict[str, list[str]] = {"met": [], "missed": [], "not_measured": []}
    for section, figures in sections.items():
        if not isinstance(figures, dict) or "error" in figures:
            summary["not_measured"].append(section)
            continue
        for name, fig in figures.items():
            if is_figure(fig) and fig.get("target") is not None:
                summary["met" if fig.get("met") else "missed"].append(f"{section}.{name}")
    return summary


def write_json(path: Path, results: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=2, default=str) + "\n")
    temporary.replace(path)


def _value(fig: dict[str, Any]) -> str:
    value = fig["value"]
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.1f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {fig['unit']}"


def _on(params: dict[str, Any], shown: dict[str, Any]) -> str:
    """Short "measured on" text: scalar params only, and only those the section's previous row did not show."""
    parts = []
    for key, value in params.items():
        text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
        if len(text) <= 24 and shown.get(key) != value:
            parts.append(f"{key}={text}")
    line = ", ".join(parts)
    return line if len(line) <= 120 else line[:117] + "..."


def print_table(sections: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=170)
    table = Table(title="make bench: usage invoicing on the local stack (one run)", show_lines=False)
    table.add_column("measure", style="bold", max_width=22)
    table.add_column("figure", max_width=34)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("target", max_width=26)
    table.add_column("met", justify="center")
    table.add_column("measured on (what changed from the row above)", max_width=60)
    for section, figures in sections.items():
        title = TITLES.get(section, section)
        if not isinstance(figures, dict) or "error" in figures:
            error = figures.get("error") if isinstance(figures, dict) else figures
            table.add_row(title, "not measured", "-", "-", "[red]error[/red]", str(error)[:64])
            table.add_section()
            continue
        first = True
        shown: dict[str, Any] = {}
        for name, fig in figures.items():
            if not is_figure(fig):
                continue
            met = fig.get("met")
            mark = "-" if met is None else ("[green]yes[/green]" if met else "[red]NO[/red]")
            params = fig.get("params", {})
            table.add_row(title if first else "", name.replace("_", " "), _value(fig), fig.get("target") or "-",
                          mark, _on(params, shown))
            shown = params
            first = False
        table.add_section()
    console.print(table)
