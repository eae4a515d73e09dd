"""Each bad value of each usage field, read through the request parser as the API reads a body, without a
server: the event is rejected on its own, as invalid, with a message naming the field. (The same values sent
in one batch to the service, which writes the good events around them: test_integration_hostile_input.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from support.hostile_values import BAD_FIELDS, Raw, dumps, event

from chalicelib.api.requests import usage_batch
from chalicelib.api.schemas import parse_json
from chalicelib.services.usage import Rejection


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS,
                         ids=[f"{field}={value.text if isinstance(value, Raw) else value!r}"[:60]
                              for field, value in BAD_FIELDS])
def test_a_bad_field_rejects_its_event_only(field: str, value: Any) -> None:
    body = dumps({"events": [event("acme", "good-a"), event("acme", "bad", **{field: value}), event("acme", "good-b")]})

    first, spoiled, last = usage_batch(parse_json(body.encode()))

    assert not isinstance(first, Rejection) and not isinstance(last, Rejection)
    assert isinstance(spoiled, Rejection), spoiled
    assert spoiled.code == "invalid_event"
    assert spoiled.message.startswith(field), spoiled.message
