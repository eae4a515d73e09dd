"""What the platform sells: regions, machine presets, meters and their line categories.

Prices live in pricebook.py; this module only says what exists and how it is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Category(StrEnum):
    COMPUTE = "compute"
    STORAGE = "storage"
    NETWORK = "network"
    ADDONS = "add-ons"
    SUPPORT = "support"
    ADJUSTMENTS = "adjustments"  # one-off charges and credits


class EgressGroup(StrEnum):
    NORTH_AMERICA_EUROPE = "North America & Europe"
    ASIA_PACIFIC_SOUTH_AMERICA = "Asia-Pacific, Oceania & South America"
    AFRICA_INDIA = "Africa & India"


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    egress_group: EgressGroup
    # Machine prices are the iad price times this; None: no published machine price there.
    machine_multiplier: Decimal | None


_NA_EU = EgressGroup.NORTH_AMERICA_EUROPE
_APAC_SA = EgressGroup.ASIA_PACIFIC_SOUTH_AMERICA
_AF_IN = EgressGroup.AFRICA_INDIA

REGIONS: dict[str, Region] = {
    r.code: r
    for r in (
        Region("iad", "Ashburn, Virginia (US)", _NA_EU, Decimal("1")),
        Region("sjc", "San Jose, California (US)", _NA_EU, Decimal("1.192")),
        Region("fra", "Frankfurt, Germany", _NA_EU, Decimal("1.154")),
        Region("nrt", "Tokyo, Japan", _APAC_SA, Decimal("1.308")),
        Region("gru", "Sao Paulo, Brazil", _APAC_SA, Decimal("1.615")),
        Region("syd", "Sydney, Australia", _APAC_SA, None),
        Region("jnb", "Johannesburg, South Africa", _AF_IN, None),
        Region("bom", "Mumbai, India", _AF_IN, None),
    )
}


@dataclass(frozen=True)
class MachinePreset:
    name: str
    cpu_kind: str  # "shared" or "performance"
    cpus: int
    included_memory_mb: int


PRESETS: dict[str, MachinePreset] = {
    p.name: p
    for p in (
        MachinePreset("shared-cpu-1x", "shared", 1, 256),
        MachinePreset("shared-cpu-2x", "shared", 2, 512),
        MachinePreset("shared-cpu-4x", "shared", 4, 1024),
        MachinePreset("shared-cpu-8x", "shared", 8, 2048),
        MachinePreset("performance-1x", "performance", 1, 2048),
        MachinePreset("performance-2x", "performance", 2, 4096),
        MachinePreset("performance-4x", "performance", 4, 8192),
        MachinePreset("performance-8x", "performance", 8, 16384),
        MachinePreset("performance-16x", "performance", 16, 32768),
    )
}

MAX_MACHINE_MEMORY_MB = 256 * 1024
MEMORY_STEP_MB = 256


@dataclass(frozen=True)
class Meter:
    """A measurable thing. Quantities arrive in `unit`; customers read `display_unit`."""

    name: str
    category: Category
    unit: str
    display_unit: str
    display_divisor: Decimal
    region_required: bool


_HOURS_PER_BILLING_MONTH = Decimal(720)  # prorated hourly over a 30-day month

METERS: dict[str, Meter] = {
    m.name: m
    for m in (
        Meter("machine_runtime", Category.COMPUTE, "second", "hours", Decimal(3600), True),
        Meter("volume_storage", Category.STORAGE, "GB-hour", "GB-months", _HOURS_PER_BILLING_MONTH, True),
        Meter("snapshot_storage", Category.STORAGE, "GB-hour", "GB-months", _HOURS_PER_BILLING_MONTH, True),
        Meter("rootfs_storage", Category.STORAGE, "GB-hour", "GB-months", _HOURS_PER_BILLING_MONTH, True),
        Meter("egress", Category.NETWORK, "GB", "GB", Decimal(1), True),
        Meter("ipv4_address", Category.NETWORK, "IP-hour", "IP-months", _HOURS_PER_BILLING_MONTH, False),
        Meter("certificate_single", Category.ADDONS, "certificate-month", "certificates", Decimal(1), False),
        Meter("certificate_wildcard", Category.ADDONS, "certificate-month", "certificates", Decimal(1), False),
    )
}
