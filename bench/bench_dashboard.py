"""``make bench`` (f): SMP echo over UDP with the dashboard open in a browser, against the same
board without the control plane.

(e) in bench_udp.py measures the control plane with one WebSocket listener; the dashboard is
that listener plus a browser that parses every event and redraws at most once a frame. It polls
nothing: an echo flood makes it read no slots and no flash. This measures it for real: headless
Chromium (Debian's, driven by playwright) shows the page of the ``control`` server for the whole
run, on the client's CPU as (e)'s listener is, while rounds alternate between the two servers.

    .venv/bin/python bench/bench_dashboard.py [--rounds N] [--seconds S]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from playwright.sync_api import sync_playwright

# Run as a script, this folder is on the path: the servers and the client are bench_udp's.
from bench_udp import (
    CONTROL_GOAL_RATIO,
    WARMUP_REQUESTS,
    Round,
    ServerProcess,
    check_smp_answer,
    echo_request,
    measure,
    pin_cpus,
    round_trips,
)

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per server (default 5)")
    parser.add_argument("--seconds", type=float, default=1.5,
                        help="time limit of one round (default 1.5)")
    parser.add_argument("--requests", type=int, default=100_000,
                        help="request limit of one round (default 100000)")
    args = parser.parse_args()
    frames = [echo_request(seq, "hello") for seq in range(256)]
    pinning, server_cpu, _ = pin_cpus(True)
    plain: list[Round] = []
    watched: list[Round] = []
    with ServerProcess("smpsim", cpu=server_cpu) as smp, \
            ServerProcess("control", cpu=server_cpu) as ctl, \
            sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 1000})
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{ctl.control_port}/")
        page.wait_for_selector("#link[data-link=live]")
        began = time.monotonic()
        check_smp_answer(ctl.port, frames[0])
        for server in (smp, ctl):
            round_trips(server.port, frames, WARMUP_REQUESTS, 10.0)
        for _ in range(args.rounds):
            plain.append(measure(smp, frames, args.requests, args.seconds))
            watched.append(measure(ctl, frames, args.requests, args.seconds))
        page.wait_for_timeout(500)  # the last send cycle reaches the page
        stats = page.evaluate("({...window.smpsimDashboard.stats})")
        seconds = time.monotonic() - began
        browser.close()
    ratio = statistics.median(w.rate / p.rate for p, w in zip(plain, watched, strict=True))
    print(f"\n(f) echo 'hello' with the dashboard open in headless Chromium ({pinning}, the "
          f"browser on the client's); median of {args.rounds} rounds")
    print(f"{'smpsim (b)':>12} {'+dashboard (f)':>15} {'f/b':>5} {'b srv CPU':>10}"
          f" {'f srv CPU':>10}")
    cpu = [[r.server_cpu_us for r in rounds if r.server_cpu_us is not None]
           for rounds in (plain, watched)]
    texts = [f"{statistics.median(v):7.1f} us" if v else "n/a" for v in cpu]
    print(f"{statistics.median(r.rate for r in plain):10,.0f}/s"
          f" {statistics.median(r.rate for r in watched):13,.0f}/s {ratio:5.2f}"
          f" {texts[0]:>10} {texts[1]:>10}")
    print(f"  the page took {stats['events']:,} events in {stats['messages']:,} messages and "
          f"redrew {stats['renders']:,} times in {seconds:.1f} s "
          f"({stats['renders'] / seconds:.0f}/s)")
    verdict = "meets" if ratio >= CONTROL_GOAL_RATIO else "is BELOW"
    print(f"\n(f) small echo with the dashboard open / without = {ratio:.2f}: {verdict} the goal "
          f"of {CONTROL_GOAL_RATIO}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
