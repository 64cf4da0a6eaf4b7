"""A rebuild raises the collector's thresholds while it runs, and only while: the last one
to end puts back what the process had."""

from __future__ import annotations

import gc

from adapters.collection import BULK_THRESHOLDS, collecting_rarely


def test_thresholds_are_raised_while_rebuilds_run_and_put_back_after_the_last() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with collecting_rarely():
            assert gc.get_threshold() == BULK_THRESHOLDS
            with collecting_rarely():  # a second rebuild in the same process
                assert gc.get_threshold() == BULK_THRESHOLDS
            assert gc.get_threshold() == BULK_THRESHOLDS, "the first one still runs"
        assert gc.get_threshold() == (700, 10, 10)
        try:
            with collecting_rarely():
                raise RuntimeError("the rebuild failed")
        except RuntimeError:
            pass
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)
