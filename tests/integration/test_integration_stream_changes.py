"""The "nothing was written" checks read the table's stream (`support.writes.changes_to`): it must see every
put, update and delete a block makes, at once, and nothing else (not a write that leaves an item as it was)."""

from __future__ import annotations

import uuid

from support.writes import changes_to


def test_every_change_of_the_block_is_seen_and_only_those(local_aws):
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=local_aws.dynamodb_endpoint)
    pk = f"STREAMTEST#{uuid.uuid4().hex}"

    def put(sk: str, n: int) -> None:
        client.put_item(TableName=local_aws.table_name, Item={"pk": {"S": pk}, "sk": {"S": sk}, "n": {"N": str(n)}})

    put("kept", 1)
    put("gone", 1)
    with changes_to() as changed:
        put("kept", 1)  # the same item again: no change
        put("new", 1)
        put("kept", 2)
        client.delete_item(TableName=local_aws.table_name, Key={"pk": {"S": pk}, "sk": {"S": "gone"}})
    assert [(change.event, change.key[1]) for change in changed] == [
        ("INSERT", "new"), ("MODIFY", "kept"), ("REMOVE", "gone")]
    modified = changed[1]
    assert (modified.old, modified.new) == ({"pk": {"S": pk}, "sk": {"S": "kept"}, "n": {"N": "1"}},
                                            {"pk": {"S": pk}, "sk": {"S": "kept"}, "n": {"N": "2"}})

    with changes_to() as after:
        pass
    assert after == []
