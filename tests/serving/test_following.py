"""The REST service follows the champion: a moved alias is picked up, a request in flight ends
on the app it started with, every response names its version, a failed reload keeps serving."""

import asyncio

from stockcast.serving.following import VERSION_HEADER, ChampionApp, Served


def _app(name: str, gate: asyncio.Event | None = None):
    async def app(scope, receive, send):
        if gate is not None:
            await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": name.encode()})
    return app


def _call(app, scope=None):
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    return sent, app(scope or {"type": "http", "path": "/invocations"}, receive, send)


def _answer(sent):
    headers = dict(sent[0]["headers"])
    return headers[VERSION_HEADER].decode(), sent[1]["body"].decode()


def test_a_moved_alias_is_served_and_named_and_a_request_in_flight_finishes_on_its_app():
    alias = ["1"]
    loads = []

    def load(version):
        loads.append(version)
        return Served(_app(f"model {version}"), f"stockcast-T v{version}", version)

    async def scenario():
        gate = asyncio.Event()
        follower = ChampionApp(Served(_app("model 1", gate), "stockcast-T v1", "1"),
                               lambda: alias[0], load, reload_seconds=3600)
        assert follower.check() is False and loads == []  # nothing moved: nothing loaded
        slow, in_flight = _call(follower)
        task = asyncio.ensure_future(in_flight)
        await asyncio.sleep(0)
        alias[0] = "2"  # promoted while a request is being answered
        assert follower.check() is True and loads == ["2"]
        fresh, call = _call(follower)
        await call
        gate.set()
        await task
        return _answer(slow), _answer(fresh)

    old, new = asyncio.run(scenario())
    assert old == ("stockcast-T v1", "model 1")
    assert new == ("stockcast-T v2", "model 2")


def test_a_failed_reload_keeps_the_champion_answering(caplog):
    def load(version):
        raise RuntimeError("MLmodel missing")

    follower = ChampionApp(Served(_app("model 1"), "stockcast-T v1", "1"), lambda: "2", load)
    assert follower.check() is False
    assert follower.served.label == "stockcast-T v1"
    assert "could not follow the champion (still serving stockcast-T v1): MLmodel missing" \
        in caplog.text
    sent, call = _call(follower)
    asyncio.run(call)
    assert _answer(sent) == ("stockcast-T v1", "model 1")


def test_the_follower_thread_picks_the_move_up_within_its_period():
    import time

    alias = ["1"]
    follower = ChampionApp(Served(_app("model 1"), "v1", "1"), lambda: alias[0],
                           lambda v: Served(_app(f"model {v}"), f"v{v}", v), reload_seconds=0.05)
    follower.start()
    try:
        alias[0] = "3"
        deadline = time.monotonic() + 5
        while follower.served.version != "3":
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        follower.stop()
