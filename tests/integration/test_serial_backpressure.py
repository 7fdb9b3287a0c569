"""A real-time serial line takes input no faster than its baud rate: a client writing 200 KB at
once blocks for the line's time, as behind a USB-serial adapter, while the board answers every
request as it comes in and its memory stays put (it used to swallow 1 MB in 0.04 s, grow, and
answer nothing for minutes)."""

from __future__ import annotations

import os
import select
import threading
import time
from pathlib import Path

from smpsim.mcumgr.framing.serial import ConsoleReceiver, Packet, encode_packet

from .itsupport import echo_frame, parse_frame, smpsim_run

BAUD = 115200
ECHOES = 2000  # 107-byte lines: 214 KB, 18.6 s of line time at 115200 baud


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


def test_a_200_kb_write_takes_the_line_time_and_is_answered_as_it_goes(tmp_path: Path) -> None:
    link = tmp_path / "board.tty"
    with smpsim_run("--profile", "fast", "--serial", str(link), "--time-scale", "1") as (proc, _):
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
        try:
            time.sleep(1.0)  # the boot's console lines go out first
            lines = [encode_packet(echo_frame(k % 256, f"{k:06d}" + "x" * 54))
                     for k in range(ECHOES)]
            total = sum(map(len, lines))
            assert total >= 200_000
            sent: dict[int, float] = {}
            answered: dict[int, float] = {}

            def read_answers() -> None:
                rx = ConsoleReceiver(65536, rx_buf_size=65536, rx_buf_count=1 << 30, shell=True)
                while len(answered) < ECHOES:
                    if not select.select([fd], [], [], 5.0)[0]:
                        return
                    for event in rx.feed(os.read(fd, 65536)):
                        if isinstance(event, Packet):
                            index = int(parse_frame(event.data)[1]["r"][:6])
                            answered[index] = time.monotonic()

            reader = threading.Thread(target=read_answers, daemon=True)
            reader.start()
            rss_before = _rss_kb(proc.pid)
            start = time.monotonic()
            for index, line in enumerate(lines):
                os.write(fd, line)  # blocking: returns when the PTY has taken it
                sent[index] = time.monotonic()
            took = time.monotonic() - start
            reader.join(30)
            rss_after = _rss_kb(proc.pid)
        finally:
            os.close(fd)
    line_time = total * 10 / BAUD
    assert took >= 0.9 * line_time, f"{total} B written in {took:.1f} s; the line needs " \
                                    f"{line_time:.1f} s"
    assert len(answered) == ECHOES
    # An echo sent halfway was answered long before the writer was done...
    middle = ECHOES // 2
    assert answered[middle] < start + took - 0.3 * line_time
    # ...and every echo soon after its write returned (the PTY's buffer and the line's backlog
    # hold about a second of input), never after a backlog of minutes.
    assert max(answered[k] - sent[k] for k in range(ECHOES)) < 3.0
    assert rss_after - rss_before < 4096, f"RSS {rss_before} -> {rss_after} kB"
