"""Take the README's dashboard picture (``make screenshot``): ``smpsim demo rollback`` at real
time, the page in headless Chromium (Debian's, driven by playwright), shot while MCUboot swaps
the crashing 2.0.0 in, 40 % of the way through.

    .venv/bin/python docs/screenshot.py [OUT.png]
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MID_SWAP = """() => {
  const swap = document.querySelector('#swap');
  return swap.dataset.state === 'running'
    && Number(swap.dataset.opsDone) >= 0.4 * Number(swap.dataset.opsTotal);
}"""


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "dashboard.png"
    demo = subprocess.Popen([str(BIN / "smpsim"), "demo", "rollback", "--step-delay", "1",
                             "--stay"], stdout=subprocess.PIPE, text=True)
    try:
        assert demo.stdout is not None
        url = None
        for line in demo.stdout:
            found = re.search(r"dashboard +(http://\S+)", line)
            if found:
                url = found[1]
                break
        assert url, "the demo printed no dashboard address"
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
            browser = playwright.chromium.launch_persistent_context(
                profile, executable_path="/usr/bin/chromium", headless=True, args=FLAGS,
                viewport={"width": 1400, "height": 1000})
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function(MID_SWAP, timeout=60_000)
            page.screenshot(path=str(out))
            browser.close()
        print(f"wrote {out}")
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
