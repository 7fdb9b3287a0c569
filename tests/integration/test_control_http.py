"""The control plane's HTTP API and WebSocket event stream against a running
``smpsim run --control 127.0.0.1:0`` (real processes, real sockets, ephemeral ports): what it
shows, the stream as smpclient's requests go by, the guards (loopback, token, Host, Origin), and
refusals that change nothing on the board."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
from smpclient.requests.os_management import EchoWrite

from smpsim.control.events import KEEP

from .control_support import Served, Stream, control_board, ws_url
from .itsupport import BIN, echo_frame, smp_session, udp_socket


def echo(served: Served, text: str) -> str:
    answer = smp_session(*served.udp, lambda c: c.request(EchoWrite(d=text)))
    return str(answer.r)


def test_the_api_shows_the_board() -> None:
    with control_board() as served:
        board = served.get("/api/board")
        assert (board["profile"], board["state"], board["boot_count"]) == \
            ("nrf52840dk", "online", 1)
        assert board["control"] == served.url
        assert {"medium": "UDP", "where": f"127.0.0.1:{served.udp[1]}"} in board["endpoints"]
        assert board["time_scale"] == 0

        primary, secondary = served.get("/api/slots")
        assert (primary["partition"], primary["version"], primary["valid"]) == \
            ("slot0", "1.0.0", True)
        assert primary["flags"] == {"pending": False, "confirmed": True, "active": True,
                                    "permanent": False}
        assert (secondary["partition"], secondary["present"]) == ("slot1", False)

        flash = served.get("/api/flash")
        assert [p["name"] for p in flash["partitions"]] == \
            ["mcuboot", "slot0", "slot1", "storage", "settings"]
        first_of_slot0 = next(s for s in flash["sectors"] if s["offset"] == 0xC000)
        assert "image header" in first_of_slot0["holds"]

        console = served.get("/api/console?since=0")
        assert console[0]["line"] == "*** Booting MCUboot ee39e2d694bd ***"
        assert any("smp_sample: build time" in c["line"] for c in console)
        assert served.get(f"/api/console?since={console[-1]['index']}") == []

        stats = served.get("/api/stats")
        assert stats["boot_count"] == 1 and stats["flash"]["ops"] > 0


def test_the_websocket_streams_every_exchange_in_order_with_history_first() -> None:
    async def main(served: Served) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                            list[dict[str, Any]]]:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(ws_url(served, "?last=3")) as ws:
            stream = Stream(ws)
            history = await stream.take(3)
            await asyncio.to_thread(echo, served, "over the wire")
            live = await stream.until(lambda e: e["kind"] == "smp" and e["dir"] == "response"
                                      and e["body"] == {"r": "over the wire"})
            await ws.send_json({"last": 2})  # a late joiner's history, asked for in-stream
            replay = await stream.take(2)
            return history, live, replay

    with control_board() as served:
        history, live, replay = asyncio.run(main(served))
    seqs = [e["seq"] for e in history + live]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost, nothing twice
    for event in history + live:
        assert isinstance(event["uptime_s"], float) and event["wall"] > 1.7e9
    request = next(e for e in live if e["kind"] == "smp" and e["dir"] == "request"
                   and e["group_name"] == "os" and e["cmd"] == 0)
    response = live[-1]
    assert (request["op"], request["medium"], request["body"]) == \
        ("write", "udp", {"d": "over the wire"})
    assert request["peer"].startswith("127.0.0.1:")
    assert (response["op"], response["smp_seq"]) == ("write_rsp", request["smp_seq"])
    assert [e["seq"] for e in replay] == [live[-2]["seq"], live[-1]["seq"]]


def test_a_late_joiner_gets_the_events_since_a_seq() -> None:
    async def main(served: Served) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(ws_url(served, "?since=20")) as ws:
            return await Stream(ws).take(5)

    with control_board() as served:
        assert [e["seq"] for e in asyncio.run(main(served))] == [21, 22, 23, 24, 25]
        polled = served.get("/api/events?since=1")  # without a WebSocket: the kept events
        assert polled[0]["seq"] == 2 and polled[0]["kind"] == "console"


def test_another_origin_is_refused_and_its_request_changes_nothing() -> None:
    async def handshake(served: Served, origin: str) -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(ws_url(served), headers={"Origin": origin}):
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    with control_board() as served:
        evil = {"Origin": "http://evil.example"}
        status, answer = served.call("POST", "/api/actions/reset", {}, headers=evil)
        assert status == 403 and "cross-origin" in answer["error"]
        assert served.call("GET", "/api/board", headers=evil)[0] == 403
        assert served.call("GET", "/api/board", headers={"Origin": "null"})[0] == 403
        assert asyncio.run(handshake(served, "http://evil.example")) == 403
        # DNS rebinding: another site's name pointed at 127.0.0.1 is not this server.
        port = served.url.rsplit(":", 1)[1]
        rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
        assert served.call("POST", "/api/actions/power-off", headers=rebound)[0] == 403
        # The server's own origin (a page it served) is let through.
        assert served.call("GET", "/api/board", headers={"Origin": served.url})[0] == 200
        assert asyncio.run(handshake(served, served.url)) == 101
        board = served.get("/api/board")
        assert (board["state"], board["boot_count"]) == ("online", 1)


def test_a_non_loopback_bind_without_a_token_is_refused_before_anything_starts() -> None:
    for address in ("0.0.0.0:0", "[::]:0", "192.0.2.1:8080"):
        proc = subprocess.run([str(BIN / "smpsim"), "run", "--udp", "127.0.0.1:0", "--control",
                               address], capture_output=True, text=True, timeout=60,
                              check=False, env={"PATH": str(BIN)})
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        assert "is not a loopback address" in proc.stderr and "--control-token" in proc.stderr


def test_a_token_a_header_cannot_carry_is_refused_before_anything_starts() -> None:
    proc = subprocess.run([str(BIN / "smpsim"), "run", "--udp", "127.0.0.1:0", "--control",
                           "127.0.0.1:0", "--control-token", "two words"], capture_output=True,
                          text=True, timeout=60, check=False, env={"PATH": str(BIN)})
    assert proc.returncode == 2 and proc.stdout == ""
    assert "--control-token: only printable ASCII" in proc.stderr


def bearer_protocol(token: str) -> str:
    """The subprotocol a browser offers to carry ``token`` (base64url, no padding)."""
    return "bearer." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


async def handshake(served: Served, token: str | None, protocols: tuple[str, ...] = (),
                    origin: str | None = None) -> int | str:
    """Open the event stream; 101 and the subprotocol answered, or the refusal's status."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if origin:
        headers["Origin"] = origin
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(ws_url(served, "?last=1"), headers=headers,
                                          protocols=protocols) as ws:
                await Stream(ws).next()
                return f"101 {ws.protocol}"
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def test_with_a_token_every_request_needs_it() -> None:
    with control_board(token="s3cret-token") as served:
        assert served.call("GET", "/api/board", token="")[0] == 401
        status, answer = served.call("POST", "/api/actions/power-off", token="wrong")
        assert status == 401 and "bearer token" in answer["error"]
        assert served.call("GET", "/api/board", token="s3cret-token-longer")[0] == 401
        assert asyncio.run(handshake(served, None)) == 401
        assert asyncio.run(handshake(served, "wrong")) == 401
        assert asyncio.run(handshake(served, "s3cret-token")) == "101 None"
        assert served.get("/api/board")["state"] == "online"  # the refused power-off did nothing
        refused = served.ctl("status", "--token", "wrong")
        assert refused.returncode == 2 and "HTTP 401" in refused.stderr
        assert served.ctl("status").returncode == 0


def test_a_browser_gives_the_token_to_the_stream_as_a_subprotocol() -> None:
    token = "s3cret/to+ken="  # base64url, not base64: no '/' or '+' in the subprotocol
    right = bearer_protocol(token)
    with control_board(token=token) as served:
        assert asyncio.run(handshake(served, None, ("smpsim", right))) == "101 smpsim"
        for wrong in (bearer_protocol("wrong"), bearer_protocol(token + "x"), "bearer.!!",
                      "bearer."):
            assert asyncio.run(handshake(served, None, ("smpsim", wrong))) == 401, wrong
        assert asyncio.run(handshake(served, None, ("smpsim",))) == 401
        # The token protocol is never answered: a handshake that offers nothing else is refused.
        assert asyncio.run(handshake(served, None, (right,))) == 400
        # The right token from another site's page is still another site's page.
        assert asyncio.run(handshake(served, None, ("smpsim", right),
                                     origin="http://evil.example")) == 403
        # Only the event stream takes it so: a plain request needs the header.
        status, _ = served.call("GET", "/api/board", headers={"Sec-WebSocket-Protocol": right},
                                token="")
        assert status == 401
        # The page itself holds nothing of the board: a browser loads it without a token.
        for path in ("/", "/app.js", "/style.css"):
            with urllib.request.urlopen(served.url + path, timeout=10) as answer:
                assert answer.status == 200
        served.proc.terminate()
        served.proc.wait(30)
        assert served.proc.stderr is not None
        errors = served.proc.stderr.read()
    assert token not in errors and right not in errors


BAD_REQUESTS = [
    ("POST", "/api/faults", b"{not json", 400, "body"),
    ("POST", "/api/faults", b"[1, 2]", 400, "body"),
    ("POST", "/api/faults", {"family": "link", "kind": "lightning"}, 400, "kind"),
    ("POST", "/api/faults", {"family": "radio", "kind": "drop_requests"}, 400, "family"),
    ("POST", "/api/faults", {"family": "link", "kind": "drop_requests", "probability": 1.5},
     400, "probability"),
    ("POST", "/api/faults", {"family": "link", "kind": "drop_requests", "count": 0}, 400,
     "count"),
    ("POST", "/api/faults", {"family": "flash", "kind": "write_error", "partition": "slot7"},
     400, "partition"),
    ("POST", "/api/faults", {"family": "flash", "kind": "bit_flip", "offset": 2**40}, 400,
     "offset"),
    ("POST", "/api/faults", {"family": "app", "kind": "crash", "colour": "red"}, 400,
     "colour"),
    ("POST", "/api/actions/time-scale", {"scale": -1}, 400, "scale"),
    ("POST", "/api/actions/time-scale", {}, 400, "scale"),
    ("POST", "/api/actions/boot-mode", {"mode": 256}, 400, "mode"),
    ("POST", "/api/actions/power-cut", {"before_op": 0}, 400, "before_op"),
    ("POST", "/api/actions/power-cut", {"at_swap_percent": 101}, 400, "at_swap_percent"),
    ("POST", "/api/actions/power-cycle", {"off_s": "long"}, 400, "off_s"),
    ("POST", "/api/actions/reset", {"hard": True}, 400, "hard"),
    ("POST", "/api/actions/reset", b"{", 400, "body"),
    ("GET", "/api/console?since=-1", None, 400, "since"),
    ("GET", "/api/events?last=x", None, 400, "last"),
    ("POST", "/api/actions/self-destruct", {}, 404, None),
    ("DELETE", "/api/faults/f99", None, 404, None),
    ("GET", "/api/nothing", None, 404, None),
    ("GET", "/index.html", None, 404, None),  # the dashboard is at /
    ("PUT", "/api/board", None, 405, None),
    ("GET", "/api/actions/reset", None, 405, None),
    ("POST", "/api/slots", {}, 405, None),
]


def test_bad_requests_are_refused_with_the_field_named_and_nothing_changes() -> None:
    with control_board() as served:
        before = served.get("/api/board")
        seq = before["events"]
        for method, path, body, status, field in BAD_REQUESTS:
            raw = body if isinstance(body, bytes) else None
            got, answer = served.call(method, path, None if raw else body, raw=raw)
            assert got == status, (method, path, body, got, answer)
            assert isinstance(answer["error"], str) and answer["error"]
            if field is not None:
                assert answer.get("field") == field, (path, body, answer)
        after = served.get("/api/board")
        assert {k: after[k] for k in ("state", "boot_count", "boot_mode", "time_scale")} == \
            {k: before[k] for k in ("state", "boot_count", "boot_mode", "time_scale")}
        assert served.get("/api/faults") == []
        # Not one fault or action event: a refused request never reached the board.
        events = served.get(f"/api/events?since={seq}")
        assert [e for e in events if e["kind"] not in ("flash",)] == [], events
        assert echo(served, "still here") == "still here"


def test_actions_and_faults_through_the_api() -> None:
    with control_board() as served:
        status, fault = served.call("POST", "/api/faults",
                                    {"family": "link", "kind": "delay", "delay_ms": 5})
        assert status == 201 and fault["id"] == "f1" and fault["active"] is True
        assert echo(served, "late") == "late"
        assert served.get("/api/faults")[0]["hits"] >= 1
        assert served.call("DELETE", "/api/faults/f1") == (200, {"cleared": 1, "id": "f1"})
        assert served.get("/api/faults") == []

        status, answer = served.call("POST", "/api/actions/reset")
        assert status == 200 and answer == {"action": "reset", "state": "online"}
        assert served.get("/api/board")["boot_count"] == 2
        status, answer = served.call("POST", "/api/actions/power-off", {})
        assert (status, answer["state"]) == (200, "off")
        assert served.call("POST", "/api/actions/power-on")[1]["state"] == "online"
        assert served.call("POST", "/api/actions/boot-mode", {"mode": 1})[1]["mode"] == 1
        assert served.get("/api/board")["boot_mode"] == 1
        served.call("POST", "/api/faults", {"family": "app", "kind": "no_confirm"})
        served.call("POST", "/api/faults", {"family": "link", "kind": "drop_requests"})
        assert served.call("DELETE", "/api/faults") == (200, {"cleared": 2})


class RawWebSocket:
    """A WebSocket client by hand on a socket with a small receive buffer: it can stop reading,
    so the server's sends back up as they would to a slow client on a slow link."""

    def __init__(self, served: Served) -> None:
        host, port = served.url.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect((host, int(port)))
        self.sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
                          "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: c21wc2ltIHRlc3Qga2V5IQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n".encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the stream"
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def records(self) -> Iterator[dict[str, Any]]:
        """Records of the stream, reading on as needed."""
        while True:
            first, second = self._exactly(2)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(self._exactly(2))
            elif length == 127:
                length = int.from_bytes(self._exactly(8))
            payload = self._exactly(length)
            if first & 0x0F == 1:  # text
                yield from (json.loads(line) for line in payload.decode().splitlines())


def echo_burst(served: Served, count: int) -> None:
    with udp_socket(served.udp) as sock:
        for seq in range(count):
            sock.send(echo_frame(seq % 256, "x" * 1000))
            sock.recv(2048)


def test_the_stream_sends_a_gap_marker_when_a_client_falls_behind() -> None:
    with control_board() as served:
        client = RawWebSocket(served)
        first = served.get("/api/board")["events"]
        # The client reads nothing while 12000 exchanges (24000 events of 1 KiB) go by: the
        # socket buffers hold up to about 10 MB, the hub the last KEEP events; the rest is lost.
        echo_burst(served, 12000)
        last = served.get("/api/board")["events"]
        records = []
        for record in client.records():
            records.append(record)
            if record.get("seq") == last:
                break
        client.sock.close()
    gaps = [i for i, r in enumerate(records) if r["kind"] == "gap"]
    assert gaps, "no gap marker"
    for i in gaps:
        before, after = records[i - 1]["seq"], records[i + 1]["seq"]
        assert after - before - 1 == records[i]["dropped"]
    seqs = [r["seq"] for r in records if r["kind"] != "gap"]
    assert seqs == sorted(seqs) and seqs[0] == first + 1
    lost = sum(records[i]["dropped"] for i in gaps)
    assert len(seqs) + lost == last - first  # every event either sent or counted as lost
    assert KEEP <= len(seqs) < last - first
