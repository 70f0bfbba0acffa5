"""The training flow submits tickers in bounded waves, in order (what is in flight stays
bounded: 300 tickers submitted at once held thousands of threads)."""


def test_tickers_are_submitted_in_bounded_waves_in_order():
    from flows.train import waves

    tickers = tuple(f"T{i}" for i in range(10))
    assert waves(tickers, 4) == [tickers[:4], tickers[4:8], tickers[8:]]
    assert [t for w in waves(tickers, 3) for t in w] == list(tickers)
