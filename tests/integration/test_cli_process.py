"""``smpsim`` as a process: ready lines, clients, clean stops on signals, exit code 2 on bad
options. Every server here binds port 0 on loopback, never the default 127.0.0.1:1337."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata, resources
from pathlib import Path

import pytest
from smpclient.requests.os_management import EchoWrite

import smpsim

from .itsupport import BIN, echo_frame, parse_frame, smp_session, smpsim_run, udp_socket

READY = re.compile(r"^smpsim: (\S+) serving SMP over UDP on (\[[0-9a-f:]+\]|[0-9.]+):(\d+)$")
STOP_TIMEOUT_S = 5.0


def smpsim_cmd(*args: str) -> list[str]:
    return [str(BIN / "smpsim"), *args]


@contextmanager
def serving(*args: str, endpoints: int = 1) -> Iterator[tuple[subprocess.Popen[str],
                                                              list[tuple[str, str, int]]]]:
    """Start ``smpsim run ARGS``; yield the process and its ready lines as (profile, host, port)."""
    with smpsim_run(*args, ready_lines=endpoints) as (proc, lines):
        ready = []
        for line in lines:
            match = READY.match(line)
            assert match, f"not a ready line: {line!r}"
            ready.append((match[1], match[2].strip("[]"), int(match[3])))
        yield proc, ready


def stop(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, float, str]:
    """Send ``sig``; (exit code, seconds to exit, stderr)."""
    start = time.monotonic()
    proc.send_signal(sig)
    code = proc.wait(STOP_TIMEOUT_S)
    elapsed = time.monotonic() - start
    assert proc.stderr is not None
    return code, elapsed, proc.stderr.read()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serves_a_client_then_stops_cleanly(sig: signal.Signals) -> None:
    with serving("--time-scale", "0", "--udp", "127.0.0.1:0") as (proc, ready):
        [(profile, host, port)] = ready
        assert (profile, host) == ("nrf52840dk", "127.0.0.1")
        assert port != 0
        answer = smp_session(host, port, lambda c: c.request(EchoWrite(d="from a process")))
        assert answer.r == "from a process"
        code, elapsed, stderr = stop(proc, sig)
    assert code == 0, stderr
    assert elapsed < STOP_TIMEOUT_S
    assert "Traceback" not in stderr
    assert "*** Booting Zephyr OS build v4.4.0 ***" in stderr  # the console goes to stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_right_after_ready_line_is_a_clean_stop(sig: signal.Signals) -> None:
    # A supervisor may signal as soon as it has read the ready line.
    for _ in range(3):
        with serving("--time-scale", "0", "--udp", "127.0.0.1:0") as (proc, _ready):
            code, _elapsed, stderr = stop(proc, sig)
        assert code == 0, stderr
        assert "Traceback" not in stderr


def test_ipv4_and_ipv6_endpoints_serve_one_board() -> None:
    with serving("--time-scale", "0", "--profile", "native_sim_udp",
                 "--udp", "127.0.0.1:0", "--udp", "[::1]:0", endpoints=2) as (proc, ready):
        assert [(p, h) for p, h, _ in ready] == [("native_sim_udp", "127.0.0.1"),
                                                 ("native_sim_udp", "::1")]
        for seq, (_, host, port) in enumerate(ready):
            with udp_socket((host, port)) as sock:
                sock.send(echo_frame(seq, host))
                header, body = parse_frame(sock.recv(4096))
            assert header["seq"] == seq
            assert body == {"r": host}
        code, _, stderr = stop(proc, signal.SIGTERM)
    assert code == 0, stderr


def test_both_wildcards_share_one_port() -> None:
    # What the container image serves: 0.0.0.0:P and [::]:P side by side. On Linux a [::]
    # socket takes IPv4 too unless it is IPv6-only, and the second bind then fails.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    with serving("--time-scale", "0", "--profile", "native_sim_udp", "--udp", f"0.0.0.0:{port}",
                 "--udp", f"[::]:{port}", endpoints=2) as (proc, ready):
        assert [(h, p) for _, h, p in ready] == [("0.0.0.0", port), ("::", port)]
        for seq, host in enumerate(("127.0.0.1", "::1")):
            with udp_socket((host, port)) as sock:
                sock.send(echo_frame(seq, host))
                header, body = parse_frame(sock.recv(4096))
            assert (header["seq"], body) == (seq, {"r": host})
        code, _, stderr = stop(proc, signal.SIGTERM)
    assert code == 0, stderr


def test_debug_log_shows_every_frame() -> None:
    with serving("--time-scale", "0", "--udp", "127.0.0.1:0", "--log-level", "debug") \
            as (proc, [(_, host, port)]):
        with udp_socket((host, port)) as sock:
            sock.send(echo_frame(77, "logged"))
            sock.recv(4096)
        code, _, stderr = stop(proc, signal.SIGTERM)
    assert code == 0, stderr
    assert re.search(r"\b0/0 op 2 seq 77 len \d+", stderr), stderr


def test_flash_file_is_created_with_the_chip_size(tmp_path: Path) -> None:
    flash = tmp_path / "flash.bin"
    with serving("--time-scale", "0", "--udp", "127.0.0.1:0", "--flash", str(flash)) \
            as (proc, _ready):
        code, _, stderr = stop(proc, signal.SIGTERM)
    assert code == 0, stderr
    assert flash.stat().st_size == 0x100000  # nRF52840: 1 MiB


def test_profiles_lists_every_builtin_profile() -> None:
    result = subprocess.run(smpsim_cmd("profiles"), capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 0, result.stderr
    shipped = sorted(p.name.removesuffix(".toml")
                     for p in resources.files("smpsim").joinpath("profiles").iterdir()
                     if p.name.endswith(".toml"))
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert listed == shipped
    assert "nrf52840dk" in listed
    assert all(len(line.split(maxsplit=1)) == 2 for line in result.stdout.splitlines())


def test_profiles_into_a_closed_pipe_ends_quietly() -> None:
    """`smpsim profiles | head -1`: a reader that has gone is no error (no traceback, exit 0)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(smpsim_cmd("profiles"), stdout=write_end, stderr=subprocess.PIPE,
                                text=True, timeout=30, check=False)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (0, "")


def test_python_m_smpsim_version() -> None:
    result = subprocess.run([sys.executable, "-m", "smpsim", "--version"], capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"smpsim {smpsim.__version__}"
    assert smpsim.__version__ == metadata.version("smpsim")


def _bad_profile(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("args", "message"), [
    (["--profile", "nosuch"], "no built-in profile 'nosuch'"),
    (["--profile", "{tmp}/missing.toml"], "cannot read profile"),
    (["--profile", "@unknown_key"], "unknown key bogus"),
    (["--profile", "@wrong_type"], "board.boot_time_ms must be float"),
    (["--profile", "@not_toml"], "not_toml.toml"),
    (["--udp", "nonsense"], "bad address 'nonsense'"),
    (["--udp", "127.0.0.1:99999"], "port out of range"),
    (["--udp", "127.0.0.1:0", "--no-udp"], "contradict"),
    (["--time-scale", "-1"], "--time-scale"),
    (["--time-scale", "fast"], "not a number"),
    (["--log-level", "loud"], "--log-level"),
])
def test_bad_options_exit_2_with_the_reason(tmp_path: Path, args: list[str], message: str) -> None:
    profiles = {
        "@unknown_key": _bad_profile(tmp_path, "unknown_key.toml", "bogus = 1\n"),
        "@wrong_type": _bad_profile(tmp_path, "wrong_type.toml",
                                    'extends = "nrf52840dk"\n[board]\nboot_time_ms = "x"\n'),
        "@not_toml": _bad_profile(tmp_path, "not_toml.toml", "x = [\n"),
    }
    args = [profiles.get(a, a.replace("{tmp}", str(tmp_path))) for a in args]
    result = subprocess.run(smpsim_cmd("run", *args), capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "serving SMP" not in result.stdout


def test_port_in_use_exits_2() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = subprocess.run(smpsim_cmd("run", "--udp", f"127.0.0.1:{port}"),
                                capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2, result.stderr
    assert f"cannot serve UDP on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
