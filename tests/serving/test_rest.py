"""The REST service (`stockcast serve-model`): MLflow's scoring app behind the project's
request bound and CSV reader, driven in-process over HTTP (starlette's test client)."""

import json

import mlflow
import pytest
from helpers import predictable_prices, quality, run_stages
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server
from starlette.testclient import TestClient

from stockcast.serving.rest import PriceRequests


@pytest.fixture
def served(tmp_path, tracking_uri):
    out = run_stages(predictable_prices(), quality(1), tracking_uri, tmp_path)
    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model("models:/stockcast-TEST@champion")
    return model, out["data"].frame.tail(80).reset_index(drop=True)


def split_body(frame) -> str:
    split = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
    return json.dumps({"dataframe_split": split})


def test_refusals_start_with_the_reason_even_under_plain_mlflow_serving(served):
    """`mlflow models serve` (its invocations function, unwrapped): the project's message is
    the whole message, not MLflow's dump of the request or its 'unexpected error'."""
    model, frame = served
    schema = model.metadata.get_input_schema()
    for bad, reason in ((frame.drop(columns="Close"), "input lacks column(s) ['Close']"),
                        (frame.head(5), "need at least"),
                        (frame.assign(Close=-frame["Close"]), "column Close has")):
        with pytest.raises(MlflowException) as info:
            scoring_server.invocations(split_body(bad), "application/json", model, schema)
        assert info.value.get_http_status_code() == 400
        assert json.loads(info.value.serialize_as_json())["message"].startswith(reason)


def test_csv_bodies_are_read_like_price_files_and_large_bodies_refused(served):
    model, frame = served
    client = TestClient(PriceRequests(scoring_server.init(model), max_bytes=200_000))
    as_json = client.post("/invocations", content=split_body(frame),
                          headers={"Content-Type": "application/json"})
    assert as_json.status_code == 200, as_json.text
    # A CSV as users export it: other spellings, semicolons and decimal commas, Adj Close
    # beside unadjusted prices (a 2:1 split not applied): the same forecast as the JSON.
    raw = frame.assign(**{"Adj Close": frame["Close"]})
    raw[["Open", "High", "Low", "Close"]] *= 2.0
    text = raw.rename(columns={"Close": "close", "Date": "date"}).to_csv(
        index=False, sep=";", decimal=",", date_format="%Y-%m-%d")
    as_csv = client.post("/invocations", content=text, headers={"Content-Type": "text/csv"})
    assert as_csv.status_code == 200, as_csv.text
    got, expected = as_csv.json()["predictions"][0], as_json.json()["predictions"][0]
    assert got["date"] == expected["date"]
    assert got["forecast"] == pytest.approx(expected["forecast"], rel=1e-9)
    assert got["upper_95"] == pytest.approx(expected["upper_95"], rel=1e-9)

    unreadable = client.post("/invocations", content="Date,Close\n",
                             headers={"Content-Type": "text/csv"})
    assert unreadable.status_code == 400
    assert unreadable.json()["message"].startswith("the CSV body holds no rows")
    too_large = client.post("/invocations", content=b"x" * 200_001,
                            headers={"Content-Type": "application/json"})
    assert too_large.status_code == 413
    assert too_large.json()["message"].startswith("request of 200,001 bytes refused")
    assert client.get("/ping").status_code == 200


def test_every_answer_says_how_many_sessions_its_prices_are_behind(served):
    """A forecast from old rows is still made, and says how old they are; rows that end on
    the last session are 0 behind."""
    import datetime as dt

    import pandas as pd

    from stockcast.market_calendar import sessions_between

    model, frame = served
    client = TestClient(PriceRequests(scoring_server.init(model)))
    old = client.post("/invocations", content=split_body(frame),
                      headers={"Content-Type": "application/json"}).json()["predictions"][0]
    last = pd.Timestamp(frame["Date"].iloc[-1])
    assert old["sessions_behind"] == sessions_between(last, pd.Timestamp(dt.date.today())) > 250
    recent = frame.assign(Date=pd.bdate_range(end=pd.Timestamp(dt.date.today()) -
                                              pd.Timedelta(days=1), periods=len(frame)))
    fresh = client.post("/invocations", content=split_body(recent),
                        headers={"Content-Type": "application/json"}).json()["predictions"][0]
    assert fresh["sessions_behind"] == 0


def _refused_cases(frame):
    """Rows the pipeline refuses, each with the words its refusal must carry."""
    import pandas as pd

    last = frame.index[-1]
    cases = {
        "high below low": (frame.assign(High=frame["High"].where(frame.index != last,
                                                                 frame["Low"] * 0.9)), "High"),
        "an unadjusted x1000 jump": (frame.assign(**{c: frame[c].where(
            frame.index != last, frame[c] * 1000) for c in ("Open", "High", "Low", "Close")}),
            "Close"),
        "a flat series": (frame.assign(Open=50.0, High=50.0, Low=50.0, Close=50.0), "Close"),
        "dates in 2040": (frame.assign(Date=pd.bdate_range("2040-01-02", periods=len(frame))),
                          "Date"),
        "a negative close": (frame.assign(Close=frame["Close"].where(frame.index != last, -1.0)),
                             "Close"),
        "a bad Adj Close": (frame.assign(**{"Adj Close": frame["Close"].where(
            frame.index != last - 2, -3.5)}), "column Adj Close has 1 value(s)"),
    }
    return cases


def test_the_service_and_validate_refuse_the_same_prices_for_the_same_reason(
        tmp_path, tracking_uri, monkeypatch, capsys):
    """Each case the pipeline refuses: HTTP 400 from the service, exit 1 from `stockcast
    validate` on the same rows as a file, and the same column named by both."""
    from stockcast.cli import main

    out = run_stages(predictable_prices(600), quality(1), tracking_uri, tmp_path)
    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model("models:/stockcast-TEST@champion")
    client = TestClient(PriceRequests(scoring_server.init(model)))
    monkeypatch.setenv("STOCKCAST_HOME", str(tmp_path))
    frame = out["data"].frame[["Date", "Open", "High", "Low", "Close", "Volume"]]
    for name, (rows, words) in _refused_cases(frame).items():
        answer = client.post("/invocations", content=split_body(rows),
                             headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, (name, answer.text)
        message = answer.json()["message"]
        assert words in message, (name, message)
        path = tmp_path / "case.csv"
        rows.to_csv(path, index=False)
        assert main(["validate", "--csv", str(path)]) == 1, name
        printed = capsys.readouterr()
        assert words in printed.out + printed.err, (name, printed)
        if message.startswith("prices refused by the pipeline's validation: "):
            first_check = message.split(": ", 2)[2].split(" at row")[0].split(" (send the")[0]
            assert first_check in printed.out, (name, first_check, printed.out)
