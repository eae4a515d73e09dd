"""Which usage transactions may commit at the same time: those that share no line."""

import threading

import pytest

from chalicelib.storage.lanes import lanes, run_lanes


def test_chunks_sharing_a_line_stay_in_one_lane_in_their_order():
    chunks = [{"a", "b"}, {"c"}, {"b", "d"}, {"e"}, {"d", "f"}]
    grouped = lanes(chunks, lambda chunk: chunk)
    assert sorted(grouped, key=len) == [[{"c"}], [{"e"}], [{"a", "b"}, {"b", "d"}, {"d", "f"}]]


def test_every_lane_runs_to_its_end_before_the_first_failure_is_raised():
    done: list[int] = []
    lock = threading.Lock()

    def work(item: int) -> int:
        if item == 2:
            raise RuntimeError("busy")
        with lock:
            done.append(item)
        return item

    with pytest.raises(RuntimeError, match="busy"):
        run_lanes([[1, 2, 3], [4, 5], [6]], work, workers=3)
    assert sorted(done) == [1, 4, 5, 6]  # 3 follows the failure in its own lane


def test_lanes_run_at_once_and_results_keep_lane_order():
    both_started = threading.Barrier(2, timeout=10)

    def work(item: int) -> int:
        if item in (1, 10):
            both_started.wait()  # only returns if the two lanes' first items run at the same time
        return item * 2

    assert run_lanes([[1, 2], [10, 11]], work, workers=2) == [2, 4, 20, 22]
