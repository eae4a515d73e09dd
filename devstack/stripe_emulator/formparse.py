"""Decode Stripe's bracketed form encoding into nested dicts and lists.

stripe-python sends ``metadata[k]=v``, ``lines[0][amount]=100`` and
``expand[0]=x`` (older clients also ``expand[]=x``). Everything decodes to
nested dicts of strings; ``as_list`` reads index-keyed dicts as lists where the
endpoint's schema expects an array.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .errors import param_error

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def _split_key(key: str) -> list[str]:
    head, _, rest = key.partition("[")
    if not rest:
        return [key]
    rest = "[" + rest
    parts = _SEGMENT.findall(rest)
    if "".join(f"[{p}]" for p in parts) != rest or not head:
        raise param_error(
            f"Invalid parameter name: {key}", code=None,
            param=key,
        )
    return [head, *parts]


def as_list(node: Any) -> Any:
    """Read an index-keyed mapping (``a[0]``, ``a[1]``) as a list.

    Done by the schema-aware validator rather than here, so that a metadata
    hash whose keys happen to be digits stays a hash.
    """
    if isinstance(node, dict) and all(k.isdigit() for k in node):
        return [node[k] for k in sorted(node, key=int)]
    return node


def decode(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Turn ``(key, value)`` pairs from a form body or query into a tree."""
    root: dict[str, Any] = {}
    append_counters: dict[int, int] = {}
    for key, value in pairs:
        parts = _split_key(key)
        node: dict[str, Any] = root
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if part == "":
                # ``a[]=x`` appends: give it the next free index.
                counter = append_counters.get(id(node), 0)
                while str(counter) in node:
                    counter += 1
                append_counters[id(node)] = counter + 1
                part = str(counter)
            if last:
                if isinstance(node.get(part), dict):
                    raise param_error(
                        f"Invalid value for {key}: expected a hash",
                        code=None, param=key,
                    )
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    # ``metadata=`` and ``metadata[k]=v`` in one request.
                    raise param_error(
                        f"Invalid value for {key}: cannot mix a scalar and a hash",
                        code=None, param=key,
                    )
                node = child
    return root
