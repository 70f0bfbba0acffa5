"""Training progress on the console: a line per ticker every few seconds, piped or not."""

import logging

from stockcast import progress


def test_progress_lines_are_throttled_and_name_the_ticker(monkeypatch, caplog):
    clock = iter([0.0, 0.5, 1.0, 3.0, 20.0, 21.0, 40.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    caplog.set_level(logging.INFO, logger="stockcast.progress")
    line = progress.EpochProgress("GOOG", epochs=6, interactive=False)  # piped: every 10 s
    for epoch in range(1, 7):
        line(epoch, {"train_loss": 1.0 / epoch, "val_loss": 2.0 / epoch})
    lines = [r.getMessage() for r in caplog.records]
    # Epoch 1, then the first after 10 s (epoch 4, at 20 s), then the last epoch.
    assert [m.split(",")[0] for m in lines] == ["GOOG: epoch 1/6", "GOOG: epoch 4/6",
                                                "GOOG: epoch 6/6"]
    assert "5.0 s/epoch" in lines[1] and "at most 10 s to go" in lines[1]


def test_the_quiet_console_still_shows_progress(tmp_path, capsys):
    from stockcast.console import setup_logging

    root = logging.getLogger("stockcast")
    saved = (root.handlers[:], root.propagate, root.level)
    try:
        setup_logging(tmp_path, verbose=False)
        logging.getLogger("stockcast.progress").info("GOOG: epoch 3/30")
        logging.getLogger("stockcast.modeling.trainer").info("internal detail")
    finally:
        root.handlers[:], root.propagate = saved[0], saved[1]
        root.setLevel(saved[2])
    err = capsys.readouterr().err
    assert "GOOG: epoch 3/30" in err and "internal detail" not in err
    assert "internal detail" in (tmp_path / "stockcast.log").read_text()


def test_quieting_the_tools_leaves_a_host_handler_alone(tmp_path):
    # The CLI lowers MLflow's own console handler to errors; a handler someone else put on
    # that logger (pytest's log capture, an application's) keeps its level.
    from stockcast.console import route_tool_logs

    logger = logging.getLogger("mlflow")  # put back after the test (tests/conftest.py)
    own, host = logging.StreamHandler(), logging.FileHandler(tmp_path / "app.log")
    host_capture = type("CaptureHandler", (logging.StreamHandler,), {})()
    logger.handlers[:] = [own, host, host_capture]
    route_tool_logs(verbose=False)
    assert (own.level, host.level, host_capture.level) == (logging.ERROR, logging.NOTSET,
                                                           logging.NOTSET)
