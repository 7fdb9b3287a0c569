"""``make bench`` (f): SMP echo over UDP with the dashboard open in a browser, against the same
board without the control plane.

(e) in bench_udp.py measures the control plane with one WebSocket listener; the dashboard is
that listener plus a browser that parses every event and redraws at most once a frame. It polls
nothing: an echo flood makes it read no slots and no flash. This measures it for real: headless
Chromium (Debian's, driven by playwright) shows the page of the ``control`` server for the whole
run, wherever the system runs it (it is not pinned), while rounds alternate between the two
servers; its CPU time per echo is printed too.

    .venv/bin/python bench/bench_dashboard.py [--rounds N] [--seconds S]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from playwright.sync_api import BrowserContext, sync_playwright

# Run as a script, this folder is on the path: the servers and the client are bench_udp's.
from bench_udp import (
    CONTROL_GOAL_RATIO,
    WARMUP_REQUESTS,
    Round,
    ServerProcess,
    check_smp_answer,
    cpu_seconds,
    echo_request,
    measure,
    pin_cpus,
    round_trips,
    verdict,
)

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser_cpu(profile: str) -> float:
    """CPU seconds used so far by the browser's processes (those started on ``profile``)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if profile.encode() not in f.read():
                    continue
        except OSError:
            continue
        total += cpu_seconds(int(entry)) or 0.0
    return total


def _watch(args: argparse.Namespace, browser: BrowserContext, *, profile: str,
           smp: ServerProcess, ctl: ServerProcess, frames: list[bytes], plain: list[Round],
           watched: list[Round]) -> tuple[dict[str, int], float, float, float]:
    """Rounds against both servers with the page open on ``ctl``'s dashboard; (the page's
    counters, the browser's CPU seconds while it watched, echoes then, seconds the page was
    open)."""
    page = browser.new_page()
    page.goto(f"http://127.0.0.1:{ctl.control_port}/")
    page.wait_for_selector("#link[data-link=live]")
    began = time.monotonic()
    check_smp_answer(ctl.port, frames[0])
    for server in (smp, ctl):
        round_trips(server.port, frames, WARMUP_REQUESTS, 10.0)
    browser_s = echoes = 0.0
    for _ in range(args.rounds):
        plain.append(measure(smp, frames, args.requests, args.seconds))
        cpu_before, time_before = browser_cpu(profile), time.monotonic()
        watched.append(measure(ctl, frames, args.requests, args.seconds))
        echoes += watched[-1].rate * (time.monotonic() - time_before)
        browser_s += browser_cpu(profile) - cpu_before
    page.wait_for_timeout(500)  # the last send cycle reaches the page
    stats = page.evaluate("({...window.smpsimDashboard.stats})")
    seconds = time.monotonic() - began
    return stats, browser_s, echoes, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per server (default 5)")
    parser.add_argument("--seconds", type=float, default=1.5,
                        help="time limit of one round (default 1.5)")
    parser.add_argument("--requests", type=int, default=100_000,
                        help="request limit of one round (default 100000)")
    args = parser.parse_args()
    frames = [echo_request(seq, "hello") for seq in range(256)]
    plain: list[Round] = []
    watched: list[Round] = []
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        # Launched before this process pins itself: the browser runs where the system puts
        # it, as a user's does, not on the client's CPU only.
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 1000})
        pinning, server_cpu, _ = pin_cpus(True)
        with ServerProcess("smpsim", cpu=server_cpu) as smp, \
                ServerProcess("control", cpu=server_cpu) as ctl:
            stats, browser_s, echoes, seconds = _watch(
                args, browser, profile=profile, smp=smp, ctl=ctl, frames=frames, plain=plain,
                watched=watched)
        browser.close()
    ratio = statistics.median(w.rate / p.rate for p, w in zip(plain, watched, strict=True))
    print(f"\n(f) echo 'hello' with the dashboard open in headless Chromium ({pinning}, the "
          f"browser unpinned); median of {args.rounds} rounds")
    print(f"{'smpsim (b)':>12} {'+dashboard (f)':>15} {'f/b':>5} {'b srv CPU':>10}"
          f" {'f srv CPU':>10}")
    cpu = [[r.server_cpu_us for r in rounds if r.server_cpu_us is not None]
           for rounds in (plain, watched)]
    texts = [f"{statistics.median(v):7.1f} us" if v else "n/a" for v in cpu]
    print(f"{statistics.median(r.rate for r in plain):10,.0f}/s"
          f" {statistics.median(r.rate for r in watched):13,.0f}/s {ratio:5.2f}"
          f" {texts[0]:>10} {texts[1]:>10}")
    print(f"  the browser's CPU time per echo while the page watched: "
          f"{browser_s / echoes * 1e6:.1f} us")
    print(f"  the page took {stats['events']:,} events in {stats['messages']:,} messages and "
          f"redrew {stats['renders']:,} times in {seconds:.1f} s "
          f"({stats['renders'] / seconds:.0f}/s)")
    print(verdict("(f) small echo with the dashboard open / without", ratio, CONTROL_GOAL_RATIO))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
