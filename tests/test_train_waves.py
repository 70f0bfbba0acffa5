"""The training flow submits tickers in bounded waves, in order (what is in flight stays
bounded: 300 tickers submitted at once held thousands of threads)."""


def test_tickers_are_submitted_in_bounded_waves_in_order():
    from flows.train import waves

    tickers = tuple(f"T{i}" for i in range(10))
    assert waves(tickers, 4) == [tickers[:4], tickers[4:8], tickers[8:]]
    assert [t for w in waves(tickers, 3) for t in w] == list(tickers)


def test_no_more_trainings_run_at_once_than_max_workers():
    from flows.train import training_slot
    from stockcast.config import PipelineConfig

    cfg = PipelineConfig.model_validate({"orchestration": {"max_workers": 2}})
    slot = training_slot(cfg)
    assert training_slot(cfg) is slot  # one per process and bound
    assert slot.acquire(blocking=False) and slot.acquire(blocking=False)
    try:
        assert not slot.acquire(blocking=False)  # a third training waits
    finally:
        slot.release()
        slot.release()
