"""The dashboard in headless Chromium against ``smpsim run --dashboard``: smpmgr updates the board
and rolls it back while the page's slot cards, flags, swap progress and boots follow (read from
the DOM, never from pixels); a button resets the board; the page keeps up with an upload at time
scale 0; ``smpsim demo rollback`` runs to its end.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext
from smpclient import SMPClient
from smpclient.generics import success
from smpclient.requests.image_management import ImageErase, ImageStatesWrite

from .browser import Dashboard, chromium, dashboard_board, flags, free_1337_host
from .itsupport import BIN, smp_session

IMAGES = Path(__file__).resolve().parents[2] / "flash_images"
UPLOADS = 4
"""Uploads of the largest sample image in a row, for the page to keep up with."""
SWAP_WATCH = """() => {
  window.swapSeen = [];
  const box = document.querySelector('#swap');
  new MutationObserver(() => window.swapSeen.push(
      [Number(box.dataset.opsDone), Number(box.dataset.opsTotal), box.dataset.state]))
    .observe(box, {attributes: true});
}"""
FRAME_WATCH = """() => {
  window.frameGaps = {max: 0, frames: 0, last: performance.now()};
  const tick = (now) => {
    const gaps = window.frameGaps;
    gaps.max = Math.max(gaps.max, now - gaps.last); gaps.last = now; gaps.frames++;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    with chromium(tmp_path / "chromium-profile") as context:
        yield context


def smpmgr(host: str, *args: str) -> str:
    """Run smpmgr (a new process, as a user types it); its stdout, which must show no error."""
    result = subprocess.run([str(BIN / "smpmgr"), "--ip", host, "--timeout", "5", *args],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    assert "Error" not in result.stdout, (args, result.stdout)
    return result.stdout


def swap_box(page: Dashboard) -> tuple[str | None, str | None, str | None]:
    return (page.attribute("#swap", "data-state"), page.attribute("#swap", "data-ops-done"),
            page.attribute("#swap", "data-ops-total"))


def test_update_then_rollback_with_smpmgr(browser: BrowserContext, tmp_path: Path) -> None:
    host = free_1337_host()
    with dashboard_board("--time-scale", "0.2", udp=f"{host}:1337") as board:
        page = Dashboard.open(browser, board.url)
        page.wait(page.slots, {0: ("1.0.0", flags("bootable", "active", "confirmed")),
                               1: ("", flags())})
        assert page.attribute(".slot[data-slot='1']", "data-present") == "false"
        page.wait(lambda: page.page.text_content("#st-state"), "online")

        # Update: upload, test, reset, confirm.
        smpmgr(host, "image", "upload", str(IMAGES / "app-1.1.0.bin"))
        page.wait(page.slots, {0: ("1.0.0", flags("bootable", "active", "confirmed")),
                               1: ("1.1.0", flags("bootable"))})
        # The hash to test, copied from the page as a user would.
        digest = page.attribute(".slot[data-slot='1']", "data-hash")
        assert digest and len(digest) == 64
        smpmgr(host, "image", "state-write", digest)
        page.wait(page.slots, {0: ("1.0.0", flags("bootable", "active", "confirmed")),
                               1: ("1.1.0", flags("bootable", "pending"))})
        page.page.evaluate(SWAP_WATCH)
        smpmgr(host, "os", "reset")
        # The whole text: "jumped" alone is still the last boot's outcome (to 1.0.0) until
        # this boot's arrives.
        page.wait(lambda: page.page.text_content("#boot-outcome"), "jumped to 1.1.0 (test)")
        assert page.attribute("#boot-outcome", "data-outcome") == "jumped"
        page.wait(page.slots, {0: ("1.1.0", flags("bootable", "active")),
                               1: ("1.0.0", flags("bootable", "confirmed"))})
        state, done, total = swap_box(page)
        assert state == "done" and done == total and int(total or 0) > 100, (state, done, total)
        seen = page.page.evaluate("window.swapSeen")
        assert any(0 < d < t and s == "running" for d, t, s in seen), seen  # moved on the way
        assert page.attribute("#boot", "data-swap-type") == "test"
        smpmgr(host, "image", "state-write", "--confirm")
        page.wait(page.slots, {0: ("1.1.0", flags("bootable", "active", "confirmed")),
                               1: ("1.0.0", flags("bootable"))})

        # Rollback: a build that crashes at boot; MCUboot goes back to 1.1.0 by itself.
        smpmgr(host, "image", "upload", str(IMAGES / "app-2.0.0-crash.bin"))
        page.wait(lambda: page.slots().get(1), ("2.0.0", flags("bootable")))
        smpmgr(host, "image", "state-write",
               page.attribute(".slot[data-slot='1']", "data-hash") or "")
        page.wait(lambda: page.slots().get(1), ("2.0.0", flags("bootable", "pending")))
        smpmgr(host, "os", "reset")
        page.wait(lambda: page.attribute("#boot-outcome", "data-outcome"), "reverted")
        assert page.page.text_content("#boot-outcome") == "reverted to 1.1.0"
        page.wait(page.slots, {0: ("1.1.0", flags("bootable", "active", "confirmed")),
                               1: ("2.0.0", flags("bootable"))})
        page.wait(lambda: page.page.eval_on_selector_all(
            "#boots li", "items => items.slice(0, 3).map(i => [i.value, i.dataset.swapType, "
                         "i.dataset.version, i.dataset.outcome, i.dataset.app])"),
            [[4, "revert", "1.1.0", "reverted", "running"],
             [3, "test", "2.0.0", "jumped", "crashed"],
             [2, "test", "1.1.0", "jumped", "running"]])
        state, done, total = swap_box(page)
        assert state == "done" and done == total, (state, done, total)
        page.wait(lambda: page.page.text_content("#st-boots"), "4")
        assert "ZEPHYR FATAL ERROR" in (page.page.text_content("#console") or "")
        # The SMP exchanges: decoded, with their rc.
        rows = page.page.eval_on_selector_all(
            "#smp tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
        assert any("os reset write" in row[2] and row[3] == "0" for row in rows), rows

        shot = tmp_path / "dashboard.png"
        page.page.screenshot(path=str(shot), full_page=True)
        print(f"dashboard screenshot: {shot}")
        assert shot.stat().st_size > 10_000
        assert page.errors == []


def test_reset_button_asks_then_resets(browser: BrowserContext) -> None:
    with dashboard_board("--time-scale", "0") as board:
        page = Dashboard.open(browser, board.url)
        page.wait(lambda: page.page.text_content("#st-boots"), "1")
        asked: list[str] = []

        def say_no(dialog: object) -> None:
            asked.append(dialog.message)  # type: ignore[attr-defined]
            dialog.dismiss()  # type: ignore[attr-defined]
        page.page.once("dialog", say_no)
        page.page.click("[data-action=reset]")
        page.page.wait_for_timeout(500)
        assert asked == ["Reset the board?"]
        assert board.api("/api/board")["boot_count"] == 1

        page.page.once("dialog", lambda dialog: dialog.accept())
        page.page.click("[data-action=reset]")
        page.wait(lambda: page.page.text_content("#st-boots"), "2")
        page.wait(lambda: page.page.text_content("#st-state"), "online")
        assert board.api("/api/board")["boot_count"] == 2
        assert "Reset: board online" in (page.page.text_content("#said") or "")

        # Crash next boot: a fault the page lists until a boot spends it.
        page.page.once("dialog", lambda dialog: dialog.accept())
        page.page.click("[data-fault=crash]")
        page.wait(lambda: page.page.eval_on_selector_all(
            "#faults li", "items => items.map(i => i.textContent)"), ["f1 app crash✕"])
        assert page.errors == []


def test_with_a_token_the_page_opens_from_the_ready_line(browser: BrowserContext) -> None:
    """A board served with --control-token: the ready line's address carries the token in its
    fragment; the page takes it out of the address bar, keeps it for the tab, shows the board
    and acts on it. Without the token, or with a wrong one, the page says so and the board
    answers it nothing; the token is in no log."""
    token = "s3cret/to+ken="
    with dashboard_board("--time-scale", "0", token=token) as board:
        assert board.url.endswith("/#token=" + urllib.parse.quote(token, safe="")), board.url
        page = Dashboard.open(browser, board.url)
        assert page.page.evaluate("location.href") == board.url.split("#")[0]
        assert page.page.evaluate("sessionStorage.getItem('smpsim.token')") == token
        page.wait(lambda: page.page.text_content("#st-boots"), "1")
        page.wait(page.slots, {0: ("1.0.0", flags("bootable", "active", "confirmed")),
                               1: ("", flags())})
        page.page.once("dialog", lambda dialog: dialog.accept())
        page.page.click("[data-action=reset]")
        page.wait(lambda: page.page.text_content("#st-boots"), "2")
        page.page.reload()  # the tab keeps the token
        page.page.wait_for_selector("#link[data-link=live]", timeout=10_000)
        page.wait(lambda: page.page.text_content("#st-boots"), "2")
        assert page.errors == []

        bare = Dashboard.open(browser, board.url.split("#")[0], link="token")
        assert bare.page.text_content("#link") == "token needed"
        wrong = Dashboard.open(browser, board.url.split("#")[0] + "#token=wrong",
                               link="refused")
        assert wrong.page.text_content("#link") == "token refused"
        assert wrong.page.text_content("#st-boots") == "…"  # it was shown nothing
        assert board.api("/api/board")["boot_count"] == 2
        board.proc.terminate()
        board.proc.wait(30)
        assert board.proc.stderr is not None
        assert token not in board.proc.stderr.read()


def test_power_cut_mid_swap_from_the_page(browser: BrowserContext) -> None:
    """Armed from the page at 40 % of the next swap: the board goes off there, the page shows
    the swap cut short; powered on from the page, MCUboot resumes the swap and boots 1.1.0."""
    image = (IMAGES / "app-1.1.0.bin").read_bytes()
    with dashboard_board("--time-scale", "0.2") as board:
        page = Dashboard.open(browser, board.url)

        async def upload_and_test(client: SMPClient) -> None:
            async for _ in client.upload(image):
                pass
            digest = bytes.fromhex(board.api("/api/slots")[1]["hash"])
            assert success(await client.request(ImageStatesWrite(hash=digest)))
        in_thread(lambda: smp_session(board.smp_host, board.smp_port, upload_and_test))
        page.wait(lambda: page.slots().get(1), ("1.1.0", flags("bootable", "pending")))

        page.page.fill("#cut-percent", "40")
        page.page.once("dialog", lambda dialog: dialog.accept())
        page.page.click("[data-action=power-cut-swap]")
        page.wait(lambda: page.page.text_content("#armed"),
                  "power cut armed at 40 % of the next swap")
        page.page.once("dialog", lambda dialog: dialog.accept())
        page.page.click("[data-action=reset]")
        page.wait(lambda: page.attribute("#swap", "data-state"), "cut")
        assert page.page.text_content("#st-state") == "off"
        assert page.attribute("#boot-outcome", "data-outcome") == "off"
        done, total = (int(page.attribute("#swap", name) or 0)
                       for name in ("data-ops-done", "data-ops-total"))
        assert 0.3 * total <= done <= 0.5 * total, (done, total)

        page.page.click("[data-action=power-on]")
        page.wait(lambda: page.attribute("#boot-outcome", "data-outcome"), "jumped")
        assert page.page.text_content("#swap-text", timeout=1000).startswith("resumed swap")
        page.wait(page.slots, {0: ("1.1.0", flags("bootable", "active")),
                               1: ("1.0.0", flags("bootable", "confirmed"))})
        assert page.errors == []


def in_thread(work: Callable[[], object]) -> None:
    """Run ``work`` in a thread of its own (playwright's sync API keeps an event loop in this
    one, so smpclient's ``asyncio.run`` cannot)."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            failed.append(exc)
    worker = threading.Thread(target=run)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "the client did not finish"
    if failed:
        raise failed[0]


def test_page_keeps_up_with_an_upload_at_time_scale_0(browser: BrowserContext) -> None:
    big = (IMAGES / "app-9.0.0-too-big.bin").read_bytes()
    with dashboard_board("--time-scale", "0") as board:
        page = Dashboard.open(browser, board.url)
        page.page.evaluate(FRAME_WATCH)
        before = page.page.evaluate("({...window.smpsimDashboard.stats})")

        async def upload(client: SMPClient) -> None:
            for _ in range(UPLOADS):  # each one erases the slot again, as a fresh upload does
                answer = await client.request(ImageErase(slot=1))
                assert success(answer), answer
                async for _ in client.upload(big):
                    pass
        began = time.monotonic()
        in_thread(lambda: smp_session(board.smp_host, board.smp_port, upload))
        took = time.monotonic() - began
        seq = board.api("/api/board")["events"]
        page.wait(lambda: int(page.attribute("body", "data-seq") or 0) >= seq, True, 5)
        caught_up = time.monotonic() - began
        after = page.page.evaluate("({...window.smpsimDashboard.stats})")
        gaps = page.page.evaluate("({...window.frameGaps})")
        events = after["events"] - before["events"]
        skipped = after["skipped"] - before["skipped"]
        renders = after["renders"] - before["renders"]
        print(f"{UPLOADS} uploads of {len(big)} B at time scale 0: {took:.2f} s, {events} events "
              f"({events / took:.0f}/s; {skipped} older SMP events of a batch left out by the "
              f"server) in {after['messages'] - before['messages']} messages, "
              f"{renders} redraws ({renders / caught_up:.0f}/s) until the page caught up after "
              f"{caught_up:.2f} s; longest frame gap {gaps['max']:.0f} ms over "
              f"{gaps['frames']} frames")
        assert events + skipped > UPLOADS * len(big) // 1500, events  # two per chunk at least
        assert renders <= gaps["frames"] + 1  # never more than one redraw per frame
        assert gaps["max"] < 1000, gaps  # the page never froze
        page.wait(lambda: page.slots().get(1), ("9.0.0", flags("bootable")))
        assert page.errors == []


def test_demo_rollback_runs_to_its_end(browser: BrowserContext) -> None:
    proc = subprocess.Popen([str(BIN / "smpsim"), "demo", "rollback", "--time-scale", "0",
                             "--step-delay", "0", "--stay"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("the board stays up"):
                break
        text = "\n".join(lines)
        assert "[5/5] The board is back on 1.0.0, confirmed" in text, text
        assert "done: 1.0.0 runs from slot 0, confirmed" in text, text
        for told in ("swap it in for one boot", "2.0.0 crashes before it confirms itself",
                     "never confirmed: swap back", "MCUboot jumps to 1.0.0 (reverted)"):
            assert told in text, (told, text)
        url = re.search(r"dashboard +(http://\S+)", text)
        assert url, text
        with urllib.request.urlopen(url[1] + "api/slots", timeout=5) as answer:
            slots = json.loads(answer.read())
        assert (slots[0]["version"], slots[0]["flags"]["confirmed"],
                slots[0]["flags"]["active"]) == ("1.0.0", True, True)
        assert (slots[1]["version"], slots[1]["flags"]["pending"]) == ("2.0.0", False)
        # A late joiner's page tells the same story from the kept events.
        page = Dashboard.open(browser, url[1])
        page.wait(lambda: page.attribute("#boot-outcome", "data-outcome"), "reverted")
        page.wait(page.slots, {0: ("1.0.0", flags("bootable", "active", "confirmed")),
                               1: ("2.0.0", flags("bootable"))})
        assert page.errors == []
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, (out, err)


def test_dashboard_files_and_the_ready_line() -> None:
    with dashboard_board("--time-scale", "0") as board:
        with urllib.request.urlopen(board.url, timeout=5) as answer:
            assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
            assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
            assert b'<script src="/app.js"' in answer.read()
        for path, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
            with urllib.request.urlopen(board.url + path, timeout=5) as answer:
                assert answer.headers["Content-Type"] == f"{kind}; charset=utf-8"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(board.url + "secret.py", timeout=5)
        assert missing.value.code == 404
        missing.value.close()
