"""DynamoDB capacity units, counted from the requests PynamoDB makes, by DynamoDB's published rules.

Sources (AWS DynamoDB Developer Guide):
  - Item sizes, CapacityUnitCalculations.html: an item's size is the sum of its attribute names
    (UTF-8 bytes) and values; strings are UTF-8 bytes; numbers take 1 byte per two significant
    digits plus 1 (leading and trailing zeros trimmed); binary is its raw length; null and
    Boolean 1 byte; a List or Map takes 3 bytes plus its elements plus 1 byte per element.
  - Units, read-write-operations.html: a standard write costs 1 write unit per KB (rounded up),
    a transactional write 2 per KB; PutItem and UpdateItem cost the larger of the item before
    and after the write; reads cost 1 unit per 4 KB strongly consistent, 0.5 eventually
    consistent, 2 transactional.
  - ConditionCheck inside TransactWriteItems, transaction-apis.html#transaction-capacity-handling:
    "You pay only for the reads or writes that are part of your transaction. DynamoDB performs
    two underlying reads or writes of every item in the transaction: one to prepare the
    transaction and one to commit the transaction." A ConditionCheck reads its item and writes
    nothing, so it is counted as a transactional read: 2 read units per 4 KB, no write unit.
    What DynamoDB Local itself reports is recorded next to it, so any difference shows.

`CapacityMeter` hooks the botocore clients PynamoDB uses. For every write it reads the items
it touches just before and just after the call with its own (unhooked) client, so item sizes
are the stored ones, not guesses from the request.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

KB = 1024
READ_BLOCK = 4 * KB
KEY_ATTRIBUTES = ("pk", "sk")
INDEX_KEYS = ("gsi1pk", "gsi1sk")  # the table's one GSI (infra/resources.yaml), projection ALL
WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
BATCH_GET_LIMIT = 100  # BatchGetItem keys per request

Item = Mapping[str, Mapping[str, Any]]


# -- item sizes ------------------------------------------------------------------------------

def number_size(text: str) -> int:
    """Bytes of a DynamoDB number: 1 per two significant digits, plus 1."""
    try:
        value = Decimal(text)
    except InvalidOperation as error:
        raise ValueError(f"not a DynamoDB number: {text!r}") from error
    digits = value.as_tuple().digits
    significant = "".join(map(str, digits)).strip("0")
    return math.ceil(max(len(significant), 1) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return number_size(str(inner))
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(member).encode()) for member in inner)
    if kind == "NS":
        return sum(number_size(str(member)) for member in inner)
    if kind == "BS":
        return sum(len(member) for member in inner)
    if kind == "L":
        return 3 + sum(value_size(member) + 1 for member in inner)
    if kind == "M":
        return 3 + sum(len(name.encode()) + value_size(member) + 1 for name, member in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Item | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int, transactional: bool) -> int:
    """Write units for one item write of `size` bytes (the larger of before and after)."""
    return max(1, math.ceil(size / KB)) * (2 if transactional else 1)


def read_units(size: int, mode: str) -> float:
    """Read units for reading `size` bytes: mode is strong, eventual or transactional."""
    factor = {"strong": 1.0, "eventual": 0.5, "transactional": 2.0}[mode]
    return max(1, math.ceil(size / READ_BLOCK)) * factor


def index_write_units(before: Item | None, after: Item | None) -> int:
    """Writes to the GSI: an item enters, leaves, changes in place, or moves between index keys."""
    def keys_of(item: Item | None) -> tuple[Any, ...] | None:
        if not item or any(name not in item for name in INDEX_KEYS):
            return None
        return tuple(str(item[name]) for name in INDEX_KEYS)

    old, new = keys_of(before), keys_of(after)
    if old is None and new is None:
        return 0
    if old is None:
        return write_units(item_size(after), False)
    if new is None:
        return write_units(item_size(before), False)
    if old == new:
        return write_units(max(item_size(before), item_size(after)), False)
    return write_units(item_size(before), False) + write_units(item_size(after), False)


# -- which items a request touches -------------------------------------------------------------

def key_of(item: Item) -> tuple[str, str]:
    return str(item["pk"]["S"]), str(item["sk"]["S"])


@dataclass(frozen=True)
class Touch:
    """One item a write request touches, and how."""

    action: str  # Put | Update | Delete | ConditionCheck
    key: tuple[str, str]
    transactional: bool


def touched_items(operation: str, params: Mapping[str, Any]) -> list[Touch]:
    if operation == "TransactWriteItems":
        touches = []
        for entry in params.get("TransactItems", []):
            ((action, body),) = entry.items()
            raw_key = body["Item"] if action == "Put" else body["Key"]
            touches.append(Touch(action, key_of(raw_key), True))
        return touches
    if operation == "PutItem":
        return [Touch("Put", key_of(params["Item"]), False)]
    if operation in ("UpdateItem", "DeleteItem"):
        return [Touch(operation.removesuffix("Item"), key_of(params["Key"]), False)]
    if operation == "BatchWriteItem":
        touches = []
        for requests in params.get("RequestItems", {}).values():
            for request in requests:
                if "PutRequest" in request:
                    touches.append(Touch("Put", key_of(request["PutRequest"]["Item"]), False))
                else:
                    touches.append(Touch("Delete", key_of(request["DeleteRequest"]["Key"]), False))
        return touches
    return []


# -- the meter ---------------------------------------------------------------------------------

@dataclass
class Tally:
    """Units summed over the requests seen while the meter was attached."""

    write_units: int = 0
    index_write_units: int = 0
    read_units: float = 0.0
    by_action: Counter[str] = field(default_factory=Counter)  # write units by Put/Update/Delete
    actions: Counter[str] = field(default_factory=Counter)  # how many of each action
    condition_check_read_units: float = 0.0
    operations: Counter[str] = field(default_factory=Counter)
    failed_operations: Counter[str] = field(default_factory=Counter)
    local_write_units: float = 0.0  # what DynamoDB Local reported (ReturnConsumedCapacity)
    local_read_units: float = 0.0
    local_total_units: float = 0.0
    local_by_operation: dict[str, float] = field(default_factory=dict)
    items_over_1kb: int = 0
    largest_written_item: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "write_units": self.write_units,
            "index_write_units": self.index_write_units,
            "read_units": self.read_units,
            "write_units_by_action": dict(self.by_action),
            "actions": dict(self.actions),
            "condition_check_read_units": self.condition_check_read_units,
            "operations": dict(self.operations),
            "failed_operations": dict(self.failed_operations),
            "dynamodb_local_reported": {"write_units": self.local_write_units, "read_units": self.local_read_units,
                                        "capacity_units": self.local_total_units,
                                        "capacity_units_by_operation": dict(self.local_by_operation)},
            "items_over_1kb_written": self.items_over_1kb,
            "largest_written_item_bytes": self.largest_written_item,
        }


class CapacityMeter:
    """Counts capacity units of the calls made through `clients` (botocore DynamoDB clients).

    `reader` is a separate botocore/boto3 DynamoDB client, not hooked, used to read the items
    a write touches before and after it. Calls from several threads are counted one at a time;
    since it reads around each call, concurrent calls must write different items (the usage
    writer's concurrent transactions share only their invoice's ConditionCheck, which writes nothing).
    """

    def __init__(self, reader: Any, table_name: str) -> None:
        self.reader = reader
        self.table_name = table_name
        self.tally = Tally()
        self._clients: list[Any] = []
        self._lock = threading.Lock()

    def attach(self, clients: Iterable[Any]) -> CapacityMeter:
        for client in clients:
            if any(client is seen for seen in self._clients):
                continue
            events = client.meta.events
            events.register("before-parameter-build.dynamodb", self._before_build, unique_id="bench-capacity-b")
            events.register("before-call.dynamodb", self._before_call, unique_id="bench-capacity-c")
            events.register("after-call.dynamodb", self._after_call, unique_id="bench-capacity-a")
            self._clients.append(client)
        return self

    def detach(self) -> None:
        for client in self._clients:
            events = client.meta.events
            events.unregister("before-parameter-build.dynamodb", unique_id="bench-capacity-b")
            events.unregister("before-call.dynamodb", unique_id="bench-capacity-c")
            events.unregister("after-call.dynamodb", unique_id="bench-capacity-a")
        self._clients = []

    def __enter__(self) -> CapacityMeter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.detach()

    # -- hooks ----------------------------------------------------------------------------
    def _before_build(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name in WRITE_OPERATIONS | READ_OPERATIONS:
            # Ask DynamoDB Local for its own count, split by table and index, to compare.
            params["ReturnConsumedCapacity"] = "INDEXES"
            context["bench_params"] = params

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        params = context.get("bench_params")
        if params is None or model.name not in WRITE_OPERATIONS:
            return
        touches = touched_items(model.name, params)
        context["bench_touches"] = touches
        context["bench_before"] = self._read_items([t.key for t in touches])

    def _after_call(self, http_response: Any, parsed: Mapping[str, Any], model: Any, context: dict[str, Any],
                    **_: Any) -> None:
        params = context.get("bench_params")
        if params is None:
            return
        with self._lock:
            self._count(operation=model.name, status=http_response.status_code, parsed=parsed, params=params,
                        context=context)

    def _count(self, operation: str, status: int, parsed: Mapping[str, Any], params: Mapping[str, Any],
               context: dict[str, Any]) -> None:
        if status != 200:
            self.tally.failed_operations[operation] += 1
            return
        self.tally.operations[operation] += 1
        self._record_local(operation, parsed.get("ConsumedCapacity"))
        if operation in WRITE_OPERATIONS:
            self._count_writes(context["bench_touches"], context["bench_before"])
        else:
            self._count_reads(operation, params, parsed)

    # -- counting -----------------------------------------------------------------------------
    def _count_writes(self, touches: list[Touch], before: dict[tuple[str, str], Item]) -> None:
        after = self._read_items([t.key for t in touches if t.action != "ConditionCheck"])
        for touch in touches:
            self.tally.actions[touch.action] += 1
            old = before.get(touch.key)
            if touch.action == "ConditionCheck":
                units = read_units(item_size(old), "transactional")
                self.tally.condition_check_read_units += units
                self.tally.read_units += units
                continue
            new = after.get(touch.key)
            size = max(item_size(old), item_size(new))
            units = write_units(size, touch.transactional)
            self.tally.write_units += units
            self.tally.by_action[touch.action] += units
            self.tally.index_write_units += index_write_units(old, new)
            self.tally.items_over_1kb += size > KB
            self.tally.largest_written_item = max(self.tally.largest_written_item, size)

    def _count_reads(self, operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]) -> None:
        if operation == "GetItem":
            mode = "strong" if params.get("ConsistentRead") else "eventual"
            key = key_of(params["Key"])
            self.tally.read_units += read_units(item_size(self._read_items([key]).get(key)), mode)
        elif operation == "BatchGetItem":
            for request in params.get("RequestItems", {}).values():
                mode = "strong" if request.get("ConsistentRead") else "eventual"
                keys = [key_of(key) for key in request["Keys"]]
                found = self._read_items(keys)  # full items: a projection does not lower the cost
                self.tally.read_units += sum(read_units(item_size(found.get(key)), mode) for key in keys)
        elif operation in ("Query", "Scan"):
            mode = "strong" if params.get("ConsistentRead") else "eventual"
            size = sum(item_size(item) for item in parsed.get("Items", []))
            self.tally.read_units += read_units(size, mode)

    def _record_local(self, operation: str, consumed: Any) -> None:
        entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        for entry in entries:
            self.tally.local_total_units += float(entry.get("CapacityUnits", 0) or 0)
            units = float(entry.get("CapacityUnits", 0) or 0)
            self.tally.local_by_operation[operation] = self.tally.local_by_operation.get(operation, 0.0) + units
            self.tally.local_write_units += float(entry.get("WriteCapacityUnits", 0) or 0)
            self.tally.local_read_units += float(entry.get("ReadCapacityUnits", 0) or 0)

    def _read_items(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Item]:
        unique = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], Item] = {}
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            wanted = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in unique[start:start + BATCH_GET_LIMIT]]
            pending: dict[str, Any] = {self.table_name: {"Keys": wanted, "ConsistentRead": True}}
            for _ in range(20):  # UnprocessedKeys come back only under throttling; bounded anyway
                response = self.reader.batch_get_item(RequestItems=pending)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found[key_of(item)] = item
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
        return found
