"""The REST service follows the champion: when the `champion` alias moves (a promotion or a
rollback), the running service answers with the new champion within ``reload_seconds``,
without a restart and without failing a request in flight (each request runs on the app it
started with; the swap is one reference assignment). Every response names the model and
version that answered, in the ``X-Stockcast-Model`` header."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

VERSION_HEADER = b"x-stockcast-model"
RELOAD_SECONDS = 30.0


@dataclass(frozen=True)
class Served:
    """The app answering now and what it serves (``stockcast-GOOG v3``)."""

    app: Callable
    label: str
    version: str


class ChampionApp:
    """ASGI app that serves the current champion's scoring app and follows the alias.

    ``current_version()`` reads where the alias points (a registry read); ``load(version)``
    returns a ready ``Served`` for that version (verified and loaded). A background thread
    checks every ``reload_seconds`` and swaps when the version changed; a failed check or load
    keeps the old champion answering and is logged."""

    def __init__(self, first: Served, current_version: Callable[[], str | None],
                 load: Callable[[str], Served], reload_seconds: float = RELOAD_SECONDS) -> None:
        self.served = first
        self._current_version = current_version
        self._load = load
        self.reload_seconds = reload_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Swap to the version the alias points at, if it moved; True when it swapped."""
        try:
            version = self._current_version()
            if version is None or version == self.served.version:
                return False
            fresh = self._load(version)
        except Exception as exc:  # the old champion keeps answering; say why
            log.warning("could not follow the champion (still serving %s): %s",
                        self.served.label, exc)
            return False
        log.warning("the champion moved: now serving %s (was %s)", fresh.label,
                    self.served.label)
        self.served = fresh
        return True

    def start(self) -> ChampionApp:
        """Start following in a daemon thread."""
        def loop() -> None:
            while not self._stop.wait(self.reload_seconds):
                self.check()

        self._thread = threading.Thread(target=loop, name="follow-champion", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following."""
        self._stop.set()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> Any:
        served = self.served  # one read: the request runs on the app it started with
        if scope["type"] != "http":
            return await served.app(scope, receive, send)

        async def send_with_version(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (VERSION_HEADER, served.label.encode())]
                message = {**message, "headers": headers}
            await send(message)

        return await served.app(scope, receive, send_with_version)
