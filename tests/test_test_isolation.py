"""The suite's own isolation: a test may run after any other in the same process."""

from __future__ import annotations

import logging
import sys

from helpers import prefect_console_on_the_session_stream


def test_prefect_console_bound_to_a_closed_capture_is_bound_to_stderr_again(tmp_path):
    from prefect.logging.configuration import setup_logging

    # As when Prefect first configures its logging inside a capfd / capsys test: its console
    # handler keeps that test's capture stream, which is closed when the test ends.
    capture = open(tmp_path / "capture.txt", "w")
    session_stderr, sys.stderr = sys.stderr, capture
    try:
        setup_logging(incremental=False)
    finally:
        sys.stderr = session_stderr
    capture.close()
    streams = [h.stream for h in logging.getLogger().handlers if hasattr(h, "stream")]
    assert capture in streams

    prefect_console_on_the_session_stream()  # what every test's teardown does

    streams = [h.stream for h in logging.getLogger().handlers if hasattr(h, "stream")]
    assert streams and capture not in streams and not any(s.closed for s in streams)
