"""The champion as a REST service: MLflow's scoring app (``/invocations``, ``/ping``), behind
a bound on the request's bytes and a CSV reader that reads a ``text/csv`` body exactly as the
pipeline reads a price file (MLflow's own CSV path needs a signature without free-typed
columns, which the price frame cannot have)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from stockcast.data.files import read_price_text
from stockcast.errors import DataSourceError

# About ten times the largest request the model accepts (MAX_REQUEST_ROWS rows of OHLCV and
# Adj Close as JSON: ~1.6 MB); bigger bodies are refused before they are read whole.
MAX_REQUEST_BYTES = 16 * 2**20

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class PriceRequests:
    """ASGI middleware for ``/invocations``: refuse a body over ``max_bytes`` (413, before it
    is read whole) and turn a ``text/csv`` body into the JSON ``dataframe_split`` the model
    reads; refusals are JSON like MLflow's own, the reason in ``message``."""

    def __init__(self, app: Callable, max_bytes: int = MAX_REQUEST_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/invocations":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await _refuse(send, 413, self._too_large(int(declared)))
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await _refuse(send, 413, self._too_large(len(body)))
        mime = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if mime == b"text/csv":
            try:
                body = csv_as_json(body)
            except DataSourceError as exc:
                return await _refuse(send, 400, f"{exc} (send text/csv with a header row, or "
                                     "application/json with a dataframe_split)")
            headers[b"content-type"] = b"application/json"
        headers[b"content-length"] = str(len(body)).encode()
        scope = {**scope, "headers": list(headers.items())}
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self, size: int) -> str:
        return (f"request of {size:,} bytes refused: at most {self.max_bytes:,} are accepted; "
                "send the most recent rows (the model reads only the last few hundred)")


def csv_as_json(body: bytes) -> bytes:
    """A CSV body as the pipeline reads a CSV file (column spellings, delimiter, decimal
    convention, Adj Close), as a JSON ``dataframe_split``; DataSourceError if unreadable."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataSourceError("the CSV body is not UTF-8 text") from None
    frame = read_price_text(text, "the CSV body")
    frame["Date"] = frame["Date"].dt.strftime("%Y-%m-%d")
    split = json.loads(frame.to_json(orient="split", index=False))
    return json.dumps({"dataframe_split": split}).encode()


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:  # after the body, whatever the client does next (a disconnect)
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(send: Send, status: int, message: str) -> None:
    code = "RESOURCE_EXHAUSTED" if status == 413 else "BAD_REQUEST"
    content = json.dumps({"error_code": code, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(content)).encode())]})
    await send({"type": "http.response.body", "body": content})


def scoring_app(model: Any) -> Callable:
    """MLflow's scoring app (``/invocations``, ``/ping``) for a loaded pyfunc model."""
    from mlflow.pyfunc import scoring_server

    return scoring_server.init(model)


def serve(app: Callable, host: str, port: int, max_bytes: int = MAX_REQUEST_BYTES) -> None:
    """Serve an ASGI app (a ``ChampionApp``) behind the request bounds until interrupted
    (uvicorn, one worker)."""
    import uvicorn

    uvicorn.run(PriceRequests(app, max_bytes), host=host, port=port, log_level="info")
