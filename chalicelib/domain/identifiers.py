"""The one alphabet for identifiers that come from clients (orgs, invoices, events, ids).

No '#' (the table's key delimiter), so a client's value can never forge another key; checked
with fullmatch, as `$` would also match before a trailing newline.
"""

from __future__ import annotations

import re

SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


class UnsafeKeyPart(ValueError):
    pass
