"""Reading one item, and updating one under its guard: the same way in every repository."""

from __future__ import annotations

from typing import TypeVar

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from ..failures import condition_failed
from .models import BaseItem

_Item = TypeVar("_Item", bound=BaseItem)


def get_or_none(model: type[_Item], pk: str, sk: str) -> _Item | None:
    """The item as last written (a consistent read), or None when there is none."""
    try:
        return model.get(pk, sk, consistent_read=True)
    except model.DoesNotExist:
        return None


def update_if(item: BaseItem, actions: list[Action], condition: Condition) -> bool:
    """Update `item` where `condition` holds; False when it did not (the caller says what that means)."""
    try:
        item.update(actions=actions, condition=condition)
        return True
    except UpdateError as error:
        if condition_failed(error):
            return False
        raise
