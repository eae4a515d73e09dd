"""Committing independent transactions at the same time.

A request's usage transactions (chunks) are independent when they touch no common line: each
commits or fails on its own, with its own dedup records, so they may run concurrently. Chunks
that share a line (a line with more events than one transaction holds) stay in one lane and
commit one after the other, so they never contend for that line.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def lanes(chunks: list[T], keys_of: Callable[[T], Iterable[Hashable]]) -> list[list[T]]:
    """Group chunks that share a key (transitively); each group keeps the chunks' order."""
    owner: dict[Hashable, int] = {}
    parent = list(range(len(chunks)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for index, item in enumerate(chunks):
        for key in keys_of(item):
            if key in owner:
                parent[root(index)] = root(owner[key])
            else:
                owner[key] = index
    grouped: dict[int, list[T]] = {}
    for index, item in enumerate(chunks):
        grouped.setdefault(root(index), []).append(item)
    return list(grouped.values())


def run_lanes(groups: list[list[T]], work: Callable[[T], R], workers: int) -> list[R]:
    """Run `work` over each lane's items in order, lanes at once on up to `workers` threads.

    Every lane runs to its end even when another fails; then the first failure is raised.
    """
    def run_lane(lane: list[T]) -> list[R]:
        return [work(item) for item in lane]

    if len(groups) <= 1 or workers <= 1:
        return [result for lane in groups for result in run_lane(lane)]
    with ThreadPoolExecutor(max_workers=min(workers, len(groups)), thread_name_prefix="usage-tx") as pool:
        futures = [pool.submit(run_lane, lane) for lane in groups]
        errors = [future.exception() for future in futures]
        for error in errors:
            if error is not None:
                raise error
        return [result for future in futures for result in future.result()]
