"""Older name of what now lives in `support`; import from there (`support.waiting`, `support.crashes`)."""

from support.crashes import ProcessDied as ProcessDied  # noqa: F401
from support.crashes import dies_at as dies_at  # noqa: F401
from support.waiting import wait_for as wait_for  # noqa: F401
