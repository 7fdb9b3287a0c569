"""``smpsim fleet --control``: the fleet's boards listed and addressed one by one over HTTP,
a reset and a fault on one board while real clients talk to the others, fleet-wide actions,
``smpsim ctl --board`` and ``ctl boards``, the same through the proxy of a fleet with worker
processes, and bad input refused.

These fleets live on 127.0.1.200 and up (test_fleet.py has the addresses below).
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from .itsupport import BIN, READ, echo_frame, smp_frame
from .test_dfu_smpmgr import smpmgr
from .test_fleet import ask, fleet, refused


def control_url(lines: list[str]) -> str:
    """The API's address from the fleet's ready lines."""
    line = next(x for x in lines if "serving the control plane" in x)
    return line.split(" on ")[1].split()[0]


def call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    """One request; (status, decoded JSON answer)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def ctl(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "smpsim"), "ctl", "--control", url, *args],
                          capture_output=True, text=True, timeout=120, check=False)


def answers_echo(address: tuple[str, int], timeout_s: float = 2.0) -> bool:
    try:
        return ask(address, echo_frame(1, "hi"), timeout_s) == {"r": "hi"}
    except TimeoutError:
        return False


async def events(url: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` events of a WebSocket event stream (history first)."""
    got: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        async for message in ws:
            got += [json.loads(line) for line in message.data.splitlines()]
            if len(got) >= count:
                return got
    return got


def test_a_fleet_lists_and_addresses_its_boards(tmp_path: Path) -> None:
    with fleet(tmp_path, "--board", "nrf52840dk:3", "--addresses", "127.0.1.200", "--control",
               "127.0.0.1:0", boards=4) as (_, lines, manifest):
        url = control_url(lines)
        ids = ["nrf52840dk-0001", "nrf52840dk-0002", "nrf52840dk-0003"]
        assert [b["control"] for b in manifest["boards"]] == [f"{url}/api/boards/{i}"
                                                              for i in ids]
        status, boards = call(f"{url}/api/boards")
        assert status == 200
        assert [b["id"] for b in boards] == ids
        assert all(b["state"] == "online" and b["boot_count"] == 1 for b in boards)
        assert [{k: v for k, v in b.items() if k not in ("state", "boot_count")}
                for b in boards] == manifest["boards"]

        status, board = call(f"{url}/api/boards/{ids[1]}")
        assert status == 200 and board["state"] == "online" and board["control"] == url
        assert board["endpoints"] == [{"medium": "UDP", "where": "127.0.1.201:1337"}]
        status, slots = call(f"{url}/api/boards/{ids[1]}/slots")
        assert status == 200 and slots[0]["version"] == "1.0.0"

        # A fault on one board: its requests are dropped, the others answer.
        status, fault = call(f"{url}/api/boards/{ids[0]}/faults", "POST",
                             {"family": "link", "kind": "drop_requests"})
        assert status == 201
        assert not answers_echo(("127.0.1.200", 1337), 0.5)
        assert answers_echo(("127.0.1.201", 1337)) and answers_echo(("127.0.1.202", 1337))
        assert call(f"{url}/api/boards/{ids[1]}/faults") == (200, [])
        assert call(f"{url}/api/boards/{ids[0]}/faults/{fault['id']}", "DELETE")[0] == 200
        assert answers_echo(("127.0.1.200", 1337))

        # Fleet-wide actions: some boards, or every one.
        status, answer = call(f"{url}/api/actions/reset", "POST", {"boards": ids[1:]})
        assert status == 200 and sorted(answer["boards"]) == ids[1:]
        status, answer = call(f"{url}/api/actions/reset", "POST")
        assert status == 200 and sorted(answer["boards"]) == ids
        assert [b["boot_count"] for b in call(f"{url}/api/boards")[1]] == [2, 3, 3]

        # One board's event stream: its history since the API first addressed it.
        stream = url.replace("http", "ws", 1) + f"/api/boards/{ids[2]}/events?since=0"
        kinds = [e["kind"] for e in asyncio.run(events(stream, 3))]
        assert "action" in kinds

        # Unknown boards and actions: 404 with a message, nothing done.
        for path, method, body in (("/api/boards/nosuch/slots", "GET", None),
                                   ("/api/boards/nosuch", "GET", None),
                                   ("/api/boards/nosuch/actions/reset", "POST", None),
                                   ("/api/actions/reset", "POST", {"boards": [ids[0], "x"]})):
            status, answer = call(url + path, method, body)
            assert status == 404, path
            assert "in this fleet (GET /api/boards lists them)" in answer["error"]
        assert call(f"{url}/api/actions/explode", "POST")[0] == 404
        status, answer = call(f"{url}/api/actions/time-scale", "POST", {"scale": "fast"})
        assert status == 400 and answer["field"] == "scale"
        assert call(f"{url}/api/actions/reset", "POST", {"boards": "all"})[0] == 400
        assert [b["boot_count"] for b in call(f"{url}/api/boards")[1]] == [2, 3, 3]

        # The dashboard shows one board at a time.
        request = urllib.request.Request(f"{url}/")
        with urllib.request.urlopen(request, timeout=10) as page:
            assert page.url.endswith(f"/?board={ids[0]}")


def test_a_reset_of_one_board_while_smpmgr_talks_to_another(tmp_path: Path) -> None:
    with fleet(tmp_path, "--board", "nrf52840dk:2", "--addresses", "127.0.1.210", "--control",
               "127.0.0.1:0", "--time-scale", "1", boards=3) as (_, lines, _manifest):
        url = control_url(lines)
        outcome: dict[str, Any] = {}
        reset = threading.Thread(target=lambda: outcome.update(
            answer=call(f"{url}/api/boards/nrf52840dk-0001/actions/reset", "POST")))
        reset.start()
        # While board 1 boots (0.6 s at time scale 1), board 2 serves smpmgr as usual.
        assert "r='still here'" in smpmgr("127.0.1.211", "os", "echo", "still here")
        assert "slot=0" in smpmgr("127.0.1.211", "image", "state-read")
        reset.join(30)
        assert outcome["answer"] == (200, {"action": "reset", "state": "online"})
        boards = call(f"{url}/api/boards")[1]
        assert [b["boot_count"] for b in boards] == [2, 1]
        assert ask(("127.0.1.210", 1337), smp_frame(READ, 0, 7, 1, {"format": "n"})) == {
            "output": "nrf52840dk-0001"}


def test_smpsim_ctl_addresses_a_fleets_board(tmp_path: Path) -> None:
    with fleet(tmp_path, "--board", "fast:2", "--addresses", "127.0.1.215", "--control",
               "127.0.0.1:0", boards=3) as (_, lines, _manifest):
        url = control_url(lines)
        listed = ctl(url, "boards")
        assert listed.returncode == 0, listed.stderr
        rows = listed.stdout.splitlines()
        assert rows[0].split() == ["id", "profile", "state", "boots", "worker", "endpoints"]
        assert rows[1].split() == ["fast-0001", "fast", "online", "1", "0", "udp",
                                   "127.0.1.215:1337"]
        assert rows[2].split()[0] == "fast-0002"

        status = ctl(url, "--board", "fast-0002", "status")
        assert status.returncode == 0, status.stderr
        assert "endpoint    UDP 127.0.1.216:1337" in status.stdout.splitlines()
        assert ctl(url, "reset", "--board", "fast-0002").stdout == "reset: board online\n"
        added = ctl(url, "--board", "fast-0001", "fault", "add", "link", "drop_requests")
        assert added.returncode == 0, added.stderr
        assert "drop_requests" in ctl(url, "--board", "fast-0001", "fault", "list").stdout
        assert ctl(url, "--board", "fast-0002", "fault", "list").stdout == "no faults\n"
        followed = ctl(url, "--board", "fast-0002", "events", "--last", "5", "--count", "2")
        assert followed.returncode == 0 and len(followed.stdout.splitlines()) == 2
        assert [b["boot_count"] for b in json.loads(ctl(url, "--json", "boards").stdout)] \
            == [1, 2]

        unknown = ctl(url, "--board", "fast-0009", "status")
        assert unknown.returncode == 2
        assert "refused (HTTP 404): no board 'fast-0009' in this fleet" in unknown.stderr


def test_a_fleet_of_workers_serves_one_api(tmp_path: Path) -> None:
    with fleet(tmp_path, "--board", "fast:4", "--addresses", "127.0.1.220", "--workers", "2",
               "--control", "127.0.0.1:0", boards=5) as (_, lines, manifest):
        url = control_url(lines)
        ids = [f"fast-{n:04d}" for n in range(1, 5)]
        assert [b["control"] for b in manifest["boards"]] == [f"{url}/api/boards/{i}"
                                                              for i in ids]
        status, boards = call(f"{url}/api/boards")
        assert status == 200 and [b["id"] for b in boards] == ids
        assert [b["worker"] for b in boards] == [0, 0, 1, 1]
        assert [b["control"] for b in boards] == [b["control"] for b in manifest["boards"]]
        assert call(f"{url}/api/boards/{ids[3]}")[1]["control"] == url

        # A fault on a board of worker 1 only.
        assert call(f"{url}/api/boards/{ids[2]}/faults", "POST",
                    {"family": "link", "kind": "drop_requests"})[0] == 201
        assert not answers_echo(("127.0.1.222", 1337), 0.5)
        assert answers_echo(("127.0.1.223", 1337)) and answers_echo(("127.0.1.220", 1337))
        assert call(f"{url}/api/boards/{ids[2]}/faults", "DELETE")[1] == {"cleared": 1}

        status, answer = call(f"{url}/api/actions/reset", "POST", {"boards": [ids[0], ids[3]]})
        assert status == 200 and sorted(answer["boards"]) == [ids[0], ids[3]]
        assert [b["boot_count"] for b in call(f"{url}/api/boards")[1]] == [2, 1, 1, 2]
        status, answer = call(f"{url}/api/actions/time-scale", "POST", {"scale": -1})
        assert status == 400 and "scale" in answer["error"]
        assert call(f"{url}/api/boards/nosuch/stats")[0] == 404

        stream = url.replace("http", "ws", 1) + f"/api/boards/{ids[3]}/events?since=0"
        assert "action" in [e["kind"] for e in asyncio.run(events(stream, 3))]
        assert ctl(url, "--board", ids[2], "status").returncode == 0
        assert ctl(url, "--board", ids[2], "events", "--last", "1", "--count", "1"
                   ).returncode == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--control", "0.0.0.0:0"], "--control 0.0.0.0:0 is not a loopback address"),
    (["--control-token", "t"], "--control-token goes with --control"),
    (["--control", "nonsense"], "bad address 'nonsense'"),
])
def test_bad_control_options_are_refused_before_any_board_starts(
        tmp_path: Path, args: list[str], message: str) -> None:
    refused(["--flash-dir", str(tmp_path), "--board", "fast:2", "--addresses", "127.0.1.230",
             *args], message)


def test_a_control_port_in_use_is_refused_before_any_board_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused(["--flash-dir", str(tmp_path), "--board", "fast:2", "--addresses",
                 "127.0.1.230", "--control", f"127.0.0.1:{port}"],
                f"cannot serve the control plane on 127.0.0.1:{port}: Address already in use")


def test_the_fleet_api_guards_itself_as_a_boards_does(tmp_path: Path) -> None:
    with fleet(tmp_path, "--board", "fast:2", "--addresses", "127.0.1.232", "--workers", "2",
               "--control", "127.0.0.1:0", "--control-token", "s3cret",
               boards=3) as (_, lines, _manifest):
        url = control_url(lines)
        for path in ("/api/boards", "/api/boards/fast-0002/slots"):
            assert call(url + path)[0] == 401
            request = urllib.request.Request(url + path,
                                             headers={"Authorization": "Bearer s3cret"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 200
            request.add_header("Origin", "http://evil.example")
            with pytest.raises(urllib.error.HTTPError) as refusal:
                urllib.request.urlopen(request, timeout=10)
            with refusal.value:
                assert refusal.value.code == 403
        listed = subprocess.run([str(BIN / "smpsim"), "ctl", "--control", url, "--token",
                                 "s3cret", "--board", "fast-0002", "status"],
                                capture_output=True, text=True, timeout=60, check=False)
        assert listed.returncode == 0, listed.stderr
