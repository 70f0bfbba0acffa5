"""The training flow submits tickers in bounded waves, in order (what is in flight stays
bounded: 300 tickers submitted at once held thousands of threads)."""


def test_tickers_are_submitted_in_bounded_waves_in_order():
    from flows.fanout import waves

    tickers = tuple(f"T{i}" for i in range(10))
    assert waves(tickers, 4) == [tickers[:4], tickers[4:8], tickers[8:]]
    assert [t for w in waves(tickers, 3) for t in w] == list(tickers)


def test_no_more_trainings_run_at_once_than_max_workers():
    from stockcast.config import PipelineConfig
    from stockcast.pipeline import training_slot

    cfg = PipelineConfig.model_validate({"orchestration": {"max_workers": 2}})
    slot = training_slot(cfg)
    assert training_slot(cfg) is slot  # one per process and bound
    assert slot.acquire(blocking=False) and slot.acquire(blocking=False)
    try:
        assert not slot.acquire(blocking=False)  # a third training waits
    finally:
        slot.release()
        slot.release()


def test_the_fit_and_the_lstm_refit_each_take_a_training_slot(monkeypatch):
    # What the slot bounds: the trainings the stages run, however many threads submit them;
    # each stage on its own, so one stage dropping its slot fails the test.
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from stockcast import pipeline
    from stockcast.config import PipelineConfig

    cfg = PipelineConfig.model_validate({"orchestration": {"max_workers": 2},
                                         "train": {"progress": False}})
    running, peak, lock = [0], [0], threading.Lock()

    def training(*args, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1

    monkeypatch.setattr(pipeline, "fit_and_calibrate", training)
    monkeypatch.setattr(pipeline, "fit_for_serving", training)
    validated = SimpleNamespace(ticker="T", frame=None)
    lstm = SimpleNamespace(choice=SimpleNamespace(is_lstm=True))
    baseline = SimpleNamespace(choice=SimpleNamespace(is_lstm=False, reason="HAR wins"),
                               evaluated=None)
    for stage, bound in ((lambda: pipeline.fit(validated, cfg), 2),
                         (lambda: pipeline.serve(None, lstm, cfg), 2),
                         # a volatility baseline's refit trains no network: no slot
                         (lambda: pipeline.serve(None, baseline, cfg), None)):
        peak[0] = 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda _, run=stage: run(), range(16)))
        assert peak[0] == bound if bound else peak[0] > 2  # unbounded: more than the slots
