"""The public price book as versioned data, and the quote for one usage line.

A version takes effect for whole billing periods: the version in force at the start of a
period prices all of that period's usage. The quote is snapshotted on the line when the
line is first written, so a later price change never alters an existing invoice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from .catalog import MAX_MACHINE_MEMORY_MB, MEMORY_STEP_MB, METERS, PRESETS, REGIONS, Category, EgressGroup, Meter
from .errors import UnknownMeter, UnknownRegion, ValidationFailed
from .periods import Period

D = Decimal
# ASCII digits only, the whole value: str.isdigit() also takes "²" (int() then fails) and "５１２" (int() reads 512).
_WHOLE_MB = re.compile(r"[0-9]{1,7}")


@dataclass(frozen=True)
class Tier:
    """Graduated tier: base units beyond the previous tier and up to `up_to` cost `unit_price`."""

    up_to: Decimal | None
    unit_price: Decimal


@dataclass(frozen=True)
class Rate:
    unit_price: Decimal  # price of `price_per` base units
    price_per: Decimal = D(1)
    price_unit: str = ""
    tiers: tuple[Tier, ...] = ()  # empty: one flat tier at unit_price
    free_allowance: Decimal = D(0)  # base units free per org per period


@dataclass(frozen=True)
class PriceBookVersion:
    version: str
    effective_from: date
    machine_cpu_second: Mapping[str, Decimal]
    extra_ram_gb_second: Decimal
    rates: Mapping[str, Rate]
    egress_per_gb: Mapping[EgressGroup, Decimal]
    support_plans: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Quote:
    """Everything a line needs to price itself, fixed when the line is created."""

    meter: str
    category: Category
    recurring: bool
    product: str
    resource: str  # what the customer recognises: preset, plan, address kind
    unit: str
    display_unit: str
    display_divisor: Decimal
    rate: Rate
    price_version: str
    free_pool: str | None


PRICE_BOOK_2026 = PriceBookVersion(
    version="2026-01",
    effective_from=date(2026, 1, 1),
    machine_cpu_second={"shared": D("0.00000075"), "performance": D("0.00001196")},
    extra_ram_gb_second=D("0.00000193"),
    rates={
        "volume_storage": Rate(D("0.15"), D(720), "GB-month"),
        "snapshot_storage": Rate(D("0.08"), D(720), "GB-month", free_allowance=D(7200)),
        "rootfs_storage": Rate(D("0.15"), D(720), "GB-month"),
        "ipv4_address": Rate(D("2.00"), D(720), "IP-month"),
        "certificate_single": Rate(D("0.10"), D(1), "certificate-month", free_allowance=D(10)),
        "certificate_wildcard": Rate(D("1.00"), D(1), "certificate-month"),
    },
    egress_per_gb={
        EgressGroup.NORTH_AMERICA_EUROPE: D("0.02"),
        EgressGroup.ASIA_PACIFIC_SOUTH_AMERICA: D("0.04"),
        EgressGroup.AFRICA_INDIA: D("0.12"),
    },
    support_plans={"standard": D("29.00"), "premium": D("199.00")},
)

PRICE_BOOK: tuple[PriceBookVersion, ...] = (PRICE_BOOK_2026,)

_PRODUCTS = {
    "volume_storage": "Volume storage",
    "snapshot_storage": "Volume snapshots",
    "rootfs_storage": "Stopped machine root filesystem",
    "ipv4_address": "Dedicated IPv4 address",
    "certificate_single": "Single-host certificate",
    "certificate_wildcard": "Wildcard certificate",
}


def version_for(period: Period, book: tuple[PriceBookVersion, ...] = PRICE_BOOK) -> PriceBookVersion:
    start = period.start.date()
    in_force = [v for v in book if v.effective_from <= start]
    if not in_force:
        raise ValidationFailed(f"no price book in force for {period}")
    return max(in_force, key=lambda v: v.effective_from)


def quote(
    meter_name: str,
    region_code: str | None,
    attributes: Mapping[str, str],
    period: Period,
    book: tuple[PriceBookVersion, ...] = PRICE_BOOK,
) -> Quote:
    meter = METERS.get(meter_name)
    if meter is None:
        raise UnknownMeter(f"unknown meter {meter_name!r}", {"meters": sorted(METERS)})
    if region_code is not None and region_code not in REGIONS:
        raise UnknownRegion(f"unknown region {region_code!r}", {"regions": sorted(REGIONS)})
    if meter.region_required and region_code is None:
        raise ValidationFailed(f"meter {meter_name!r} needs a region")
    prices = version_for(period, book)
    if meter_name == "machine_runtime":
        return _machine_quote(meter, region_code or "", attributes, prices)
    if meter_name == "egress":
        group = REGIONS[region_code or ""].egress_group
        rate = Rate(prices.egress_per_gb[group], D(1), "GB")
        return _quote(meter, f"Outbound data transfer ({group.value})", "egress", rate, prices)
    if meter_name == "support_plan":
        plan = attributes.get("plan", "")
        if plan not in prices.support_plans:
            raise ValidationFailed(f"unknown support plan {plan!r}", {"plans": sorted(prices.support_plans)})
        rate = Rate(prices.support_plans[plan], D(1), "month")
        return _quote(meter, f"Support plan: {plan}", plan, rate, prices)
    return _quote(meter, _PRODUCTS[meter_name], meter_name, prices.rates[meter_name], prices)


def _quote(meter: Meter, product: str, resource: str, rate: Rate, prices: PriceBookVersion) -> Quote:
    return Quote(
        meter=meter.name,
        category=meter.category,
        recurring=meter.recurring,
        product=product,
        resource=resource,
        unit=meter.unit,
        display_unit=meter.display_unit,
        display_divisor=meter.display_divisor,
        rate=rate,
        price_version=prices.version,
        free_pool=meter.name if rate.free_allowance > 0 else None,
    )


def _machine_quote(
    meter: Meter, region_code: str, attributes: Mapping[str, str], prices: PriceBookVersion
) -> Quote:
    preset = PRESETS.get(attributes.get("preset", ""))
    if preset is None:
        raise ValidationFailed("machine_runtime needs attributes.preset", {"presets": sorted(PRESETS)})
    multiplier = REGIONS[region_code].machine_multiplier
    if multiplier is None:
        raise UnknownRegion(f"machines have no published price in {region_code!r}")
    memory_mb = _memory_mb(attributes.get("memory_mb"), preset.included_memory_mb)
    extra_gb = D(memory_mb - preset.included_memory_mb) / D(1024)
    per_second = preset.cpus * prices.machine_cpu_second[preset.cpu_kind] + extra_gb * prices.extra_ram_gb_second
    rate = Rate(per_second * multiplier, D(1), "second")
    resource = f"{preset.name} {_memory_label(memory_mb)}"
    return _quote(meter, f"Machine {resource}", resource, rate, prices)


def _memory_mb(raw: str | None, included: int) -> int:
    if raw is None:
        return included
    if not _WHOLE_MB.fullmatch(raw):
        raise ValidationFailed("attributes.memory_mb must be a whole number of MB in ASCII digits (\"512\")")
    memory = int(raw)
    if memory < included or memory > MAX_MACHINE_MEMORY_MB or memory % MEMORY_STEP_MB:
        raise ValidationFailed(
            f"attributes.memory_mb must be a multiple of {MEMORY_STEP_MB}"
            f" between {included} and {MAX_MACHINE_MEMORY_MB}"
        )
    return memory


def _memory_label(memory_mb: int) -> str:
    return f"{memory_mb // 1024} GB" if memory_mb % 1024 == 0 else f"{memory_mb} MB"
