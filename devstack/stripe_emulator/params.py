"""Validate request parameters against stripe-python's typed params.

The allowed parameters of each endpoint are read from the TypedDicts in
``stripe.params`` (for example ``InvoiceAddLinesParams``), so the emulator
accepts exactly what the pinned client can send and refuses anything else
with Stripe's ``parameter_unknown`` error, as the live API does. Values arrive
as form strings and are coerced to the declared types (int, bool, Decimal,
nested hashes, arrays) on the way.
"""

from __future__ import annotations

import decimal
import functools
import sys
import types
import typing
from typing import Any

import stripe.params
import typing_extensions
from stripe import _request_options
from stripe._stripe_context import StripeContext
from stripe._stripe_object import UntypedStripeObject

from .errors import StripeError, param_error
from .formparse import as_list

# Client-side options (api_key, idempotency_key, ...) share the TypedDicts
# but never travel as request parameters.
REQUEST_OPTION_KEYS = frozenset(_request_options.RequestOptions.__annotations__)


def params_type(name: str) -> Any:
    """The TypedDict ``stripe.params.<name>``, e.g. ``InvoiceCreateParams``."""
    return getattr(stripe.params, name)


@functools.cache
def _hints(td: Any) -> dict[str, Any]:
    # The inherited RequestOptions annotations refer to names that only
    # exist under TYPE_CHECKING, so resolve with both modules' namespaces.
    ns: dict[str, Any] = dict(vars(_request_options))
    ns.update(vars(sys.modules[td.__module__]))
    ns["StripeContext"] = StripeContext
    try:
        return typing.get_type_hints(td, globalns=ns)
    except Exception:  # pragma: no cover - only key names are then checked
        return {key: Any for key in td.__annotations__}


def allowed_keys(td: Any) -> tuple[frozenset[str], frozenset[str]]:
    """(all parameter names, required parameter names) of a params type."""
    keys: frozenset[str] = frozenset(td.__required_keys__ | td.__optional_keys__)
    required: frozenset[str] = frozenset(td.__required_keys__)
    return keys - REQUEST_OPTION_KEYS, required - REQUEST_OPTION_KEYS


def validate(td: Any, tree: dict[str, Any]) -> dict[str, Any]:
    """Check and coerce a decoded request against ``td``; raise on mismatch."""
    return _typed_dict(td, tree, "")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}[{key}]" if prefix else key


def _typed_dict(td: Any, value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise param_error(f"Invalid hash: {path}", code=None,
                          param=path)
    keys, required = allowed_keys(td)
    hints = _hints(td)
    out: dict[str, Any] = {}
    for key, sub in value.items():
        if key not in keys:
            raise param_error(
                f"Received unknown parameter: {_join(path, key)}",
                code="parameter_unknown", param=_join(path, key),
            )
        out[key] = _coerce(hints.get(key, Any), sub, _join(path, key))
    for key in sorted(required):
        if key not in out:
            raise param_error(
                f"Missing required param: {_join(path, key)}.",
                code="parameter_missing", param=_join(path, key),
            )
    return out


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) is typing.Union or isinstance(tp, types.UnionType)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    if tp is Any:
        return value
    if _is_union(tp):
        return _union(typing.get_args(tp), value, path)
    if typing_extensions.is_typeddict(tp):
        return _typed_dict(tp, value, path)
    origin = typing.get_origin(tp)
    if _is_literal(tp):
        if value in typing.get_args(tp):
            return value
        choices = ", ".join(repr(a) for a in typing.get_args(tp))
        raise param_error(f"Invalid {path}: must be one of {choices}",
                          code=None, param=path)
    if origin is list:
        items = as_list(value)
        if not isinstance(items, list):
            raise param_error(f"Invalid array: {path}", code=None,
                              param=path)
        (item_tp,) = typing.get_args(tp) or (Any,)
        return [_coerce(item_tp, item, f"{path}[{i}]") for i, item in enumerate(items)]
    if origin is dict or origin is UntypedStripeObject or tp is dict:
        return _string_map(value, path)
    return _scalar(tp, value, path)


def _is_literal(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Literal, typing_extensions.Literal)


def _enum_options(options: tuple[Any, ...]) -> tuple[Any, ...]:
    """stripe-python types an enum as ``Literal[...] | str`` so old clients accept new values; the API
    itself refuses a value it does not define. ``Literal[''] | str`` (empty string unsets) stays open."""
    values = [v for option in options if _is_literal(option) for v in typing.get_args(option)]
    if str in options and any(isinstance(v, str) and v for v in values):
        return tuple(option for option in options if option is not str)
    return options


def _union(options: tuple[Any, ...], value: Any, path: str) -> Any:
    options = _enum_options(options)
    first_error: StripeError | None = None
    # Try shapes that match the value first: hashes for dicts, scalars else.
    ordered = sorted(options, key=lambda o: 0 if _accepts_hash(o) == isinstance(value, dict) else 1)
    for option in ordered:
        try:
            return _coerce(option, value, path)
        except StripeError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def _accepts_hash(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return (typing_extensions.is_typeddict(tp) or origin in (list, dict)
            or origin is UntypedStripeObject)


def _string_map(value: Any, path: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise param_error(f"Invalid hash: {path}", code=None,
                          param=path)
    for key, sub in value.items():
        if not isinstance(sub, str):
            raise param_error(f"Invalid string: {_join(path, key)}",
                              code=None, param=_join(path, key))
    return dict(value)


def _scalar(tp: Any, value: Any, path: str) -> Any:
    if isinstance(value, dict):
        raise param_error(f"Invalid {getattr(tp, '__name__', 'value')}: {path} "
                          "should be a scalar, not a hash",
                          code=None, param=path)
    if tp is bool:
        if value in ("true", "false"):
            return value == "true"
        raise param_error(f"Invalid boolean: {value}", code=None,
                          param=path)
    if tp is int:
        try:
            return int(value)
        except ValueError:
            raise param_error(f"Invalid integer: {value}",
                              code="parameter_invalid_integer", param=path) from None
    if tp in (float, decimal.Decimal):
        try:
            return decimal.Decimal(value)
        except decimal.InvalidOperation:
            raise param_error(f"Invalid decimal: {value}",
                              code=None, param=path) from None
    return value
