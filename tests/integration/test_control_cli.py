"""``smpsim ctl`` against a running ``smpsim run --control 127.0.0.1:0``, the ``--trace`` file
(whole lines, every event, even after SIGKILL) and the ``--faults`` file (applied at start; a bad
one stops the run before anything starts)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from .control_support import Served, control_board
from .itsupport import BIN, echo_frame, parse_frame, udp_socket, wait_until


def answered(served: Served, text: str, timeout_s: float = 0.5) -> bool:
    """One os echo over a raw socket: whether its answer came back."""
    with udp_socket(served.udp, timeout_s) as sock:
        sock.send(echo_frame(1, text))
        try:
            _, body = parse_frame(sock.recv(2048))
        except TimeoutError:
            return False
    assert body == {"r": text}
    return True


def test_ctl_shows_the_board() -> None:
    with control_board() as served:
        status = served.ctl("status")
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0].startswith("profile     nrf52840dk (")
        assert lines[1] == "state       online (boot 1, boot mode 0)"
        assert f"endpoint    UDP 127.0.0.1:{served.udp[1]}" in lines
        assert json.loads(served.ctl("--json", "status").stdout)["state"] == "online"
        assert json.loads(served.ctl("status", "--json").stdout)["boot_count"] == 1

        slots = served.ctl("slots").stdout.splitlines()
        assert slots[0].split() == ["IMG", "SLOT", "PARTITION", "VERSION", "FLAGS", "VALID",
                                    "HASH", "MAGIC", "SWAP", "COPY_DONE", "IMAGE_OK"]
        assert slots[1].split()[:6] == ["0", "0", "slot0", "1.0.0", "confirmed,active", "yes"]
        assert slots[2].split()[:3] == ["0", "1", "slot1"] and "no image" in slots[2]

        flash = served.ctl("flash").stdout
        assert "slot1      0x082000  0x76000  image 0 secondary slot" in flash
        assert "image header, image body" in flash
        console = served.ctl("console").stdout.splitlines()
        assert console[0].endswith("] *** Booting MCUboot ee39e2d694bd ***")
        assert "boot count: 1" in served.ctl("stats").stdout
        assert served.ctl("fault", "list").stdout == "no faults\n"


def test_ctl_acts_and_injects_faults() -> None:
    with control_board() as served:
        added = served.ctl("fault", "add", "link", "drop_responses", "count=1", "seed=7")
        assert added.returncode == 0, added.stderr
        assert added.stdout.startswith("added f1: link drop_responses (")
        assert "count=1" in added.stdout and "seed=7" in added.stdout
        assert not answered(served, "lost")
        assert answered(served, "found")
        listed = served.ctl("fault", "list").stdout.splitlines()
        assert listed[1].split()[:5] == ["f1", "link", "drop_responses", "1", "no"]
        assert served.ctl("fault", "clear", "f1").stdout == "cleared 1 fault\n"

        assert served.ctl("reset").stdout == "reset: board online\n"
        assert served.ctl("power-off").stdout == "power-off: board off\n"
        assert not answered(served, "nobody home")
        assert served.ctl("power-on").stdout == "power-on: board online\n"
        assert served.ctl("power-cycle", "--off-s", "0").stdout == \
            "power-cycle: board online (off_s=0.0)\n"
        assert served.ctl("boot-mode", "1").stdout == "boot-mode: board online (mode=1)\n"
        assert served.ctl("time-scale", "0").stdout == "time-scale: board online (scale=0.0)\n"
        board = json.loads(served.ctl("--json", "status").stdout)
        assert (board["boot_count"], board["boot_mode"]) == (4, 1)
        assert answered(served, "back")


@pytest.mark.parametrize(("args", "message"), [
    (["fault", "add", "link", "lightning"], "kind: 'lightning' is not one of"),
    (["fault", "add", "link", "drop_requests", "probability=2"], "probability: 2"),
    (["fault", "add", "flash", "write_error", "partition=slot7"], "partition: no partition"),
    (["fault", "add", "link", "drop_requests", "count"], "fields are KEY=VALUE"),
    (["fault", "clear", "f9"], "no fault 'f9'"),
    (["power-cut", "--before-op", "0"], "before_op: 0"),
    (["time-scale", "--", "-2"], "scale: -2"),
    (["boot-mode", "300"], "mode: 300"),
])
def test_ctl_says_why_the_api_refused(args: list[str], message: str) -> None:
    with control_board() as served:
        refused = served.ctl(*args)
        assert refused.returncode == 2
        assert message in refused.stderr
        assert refused.stdout == ""
        assert served.get("/api/board")["boot_count"] == 1


def test_ctl_usage_errors_and_no_server() -> None:
    usage = subprocess.run([str(BIN / "smpsim"), "ctl", "fault", "add", "radio", "x"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 2 and "invalid choice: 'radio'" in usage.stderr
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = subprocess.run([str(BIN / "smpsim"), "ctl", "--control", f"http://127.0.0.1:{port}",
                           "status"], capture_output=True, text=True, timeout=60, check=False)
    assert down.returncode == 1
    assert f"cannot reach the control plane at http://127.0.0.1:{port}" in down.stderr
    down = subprocess.run([str(BIN / "smpsim"), "ctl", "--control", f"http://127.0.0.1:{port}",
                           "events"], capture_output=True, text=True, timeout=60, check=False)
    assert down.returncode == 1 and "cannot reach" in down.stderr


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "human"])
def test_ctl_events_follows_the_stream(as_json: bool) -> None:
    with control_board() as served:
        command = [str(BIN / "smpsim"), "ctl", "--control", served.url, "events", "--last", "1",
                   "--count", "4", *(["--json"] if as_json else [])]
        follower = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
        assert follower.stdout is not None
        first = follower.stdout.readline()  # the last event: it is connected
        assert answered(served, "one")
        assert answered(served, "two")
        rest, errors = follower.communicate(timeout=30)
        assert follower.returncode == 0, errors
    lines = [first, *rest.splitlines()]
    assert len(lines) == 4
    if as_json:
        events = [json.loads(line) for line in lines]
        assert [e["kind"] for e in events[1:]] == ["smp", "smp", "smp"]
        assert [e["dir"] for e in events[1:]] == ["request", "response", "request"]
        assert events[1]["body"] == {"d": "one"} and events[2]["body"] == {"r": "one"}
    else:
        assert "smp      request  udp 127.0.0.1:" in lines[1]
        assert lines[2].split()[3:] == ["response", "udp", lines[1].split()[5],
                                        "write_rsp", "os/0", "seq", "1", "(16", "B)"]


def read_trace(path: Path) -> list[dict[str, object]]:
    text = path.read_text()
    assert text.endswith("\n"), "a partial last line"
    return [json.loads(line) for line in text.splitlines()]


def test_the_trace_has_every_event_in_whole_lines_even_after_sigkill(tmp_path: Path) -> None:
    trace = tmp_path / "run.jsonl"
    with control_board("--trace", str(trace)) as served:
        for text in ("a", "b", "c"):
            assert answered(served, text)
        served.call("POST", "/api/actions/reset")
        kept = served.get("/api/events?since=0")
        wait_until(lambda: trace.read_text().count("\n") >= kept[-1]["seq"])
        served.proc.kill()  # SIGKILL: no clean stop
        served.proc.wait(10)
    traced = read_trace(trace)
    assert traced[:len(kept)] == kept  # the same events as the API's, each exactly as shown
    assert [e["seq"] for e in traced] == list(range(1, len(traced) + 1))
    assert traced[0]["kind"] == "board" and traced[0]["state"] == "booting"  # the first boot
    assert sum(1 for e in traced if e["kind"] == "smp") >= 6


def test_the_trace_is_whole_lines_when_killed_mid_traffic(tmp_path: Path) -> None:
    trace = tmp_path / "busy.jsonl"
    for _ in range(3):
        with control_board("--trace", str(trace)) as served:
            stop = threading.Event()

            def traffic(served: Served = served, stop: threading.Event = stop) -> None:
                with udp_socket(served.udp, 0.5) as sock:
                    while not stop.is_set():
                        try:
                            sock.send(echo_frame(0, "x" * 200))
                            sock.recv(2048)
                        except OSError:
                            return

            worker = threading.Thread(target=traffic)
            worker.start()
            time.sleep(0.3)
            served.proc.kill()
            served.proc.wait(10)
            stop.set()
            worker.join(5)
    runs = read_trace(trace)  # appended: three runs, each from seq 1
    starts = [i for i, e in enumerate(runs) if e["seq"] == 1]
    assert len(starts) == 3
    for begin, end in zip(starts, [*starts[1:], len(runs)], strict=True):
        assert [e["seq"] for e in runs[begin:end]] == list(range(1, end - begin + 1))


def test_the_faults_file_is_applied_at_start(tmp_path: Path) -> None:
    faults = tmp_path / "faults.toml"
    faults.write_text('[[fault]]\nfamily = "link"\nkind = "drop_responses"\ncount = 1\n\n'
                      '[[fault]]\nfamily = "flash"\nkind = "write_error"\n'
                      'partition = "slot1"\ncount = 2\n')
    trace = tmp_path / "trace.jsonl"
    with control_board("--faults", str(faults), "--trace", str(trace)) as served:
        listed = served.get("/api/faults")
        assert [(f["id"], f["family"], f["kind"], f["active"]) for f in listed] == \
            [("f1", "link", "drop_responses", True), ("f2", "flash", "write_error", True)]
        assert listed[1]["offset"] == 0x82000 and listed[1]["count"] == 2
        assert not answered(served, "dropped")
        assert answered(served, "through")
    events = read_trace(trace)
    online = next(i for i, e in enumerate(events) if e.get("state") == "online")
    added = [i for i, e in enumerate(events) if e["kind"] == "fault" and e["what"] == "added"]
    assert len(added) == 2 and min(added) > online  # added once the board is up


@pytest.mark.parametrize(("text", "message"), [
    ("[[fault]\n", "not TOML"),
    ('faults = []\n', "unknown key 'faults'"),
    ('fault = "drop"\n', "must be an array of tables"),
    ('[[fault]]\nfamily = "link"\nkind = "drop_requests"\n\n[[fault]]\nfamily = "link"\n'
     'kind = "lightning"\n', "fault 2: kind: 'lightning' is not one of"),
    ('[[fault]]\nfamily = "flash"\nkind = "slow"\n', "fault 1: extra_ms:"),
    ('[[fault]]\nfamily = "link"\nkind = "delay"\ndelay_ms = 10\nwhen = "now"\n',
     "fault 1: unknown field 'when'"),
])
def test_a_bad_faults_file_stops_the_run_before_it_starts(tmp_path: Path, text: str,
                                                           message: str) -> None:
    faults = tmp_path / "bad.toml"
    faults.write_text(text)
    proc = subprocess.run([str(BIN / "smpsim"), "run", "--udp", "127.0.0.1:0", "--faults",
                           str(faults)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""  # no ready line: nothing started
    assert proc.stderr.startswith(f"smpsim: error: {faults}: ")
    assert message in proc.stderr
    missing = tmp_path / "missing.toml"
    proc = subprocess.run([str(BIN / "smpsim"), "run", "--faults", str(missing)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and str(missing) in proc.stderr
