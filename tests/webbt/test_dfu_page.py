"""A Web Bluetooth DFU page (``www/``: plain HTML and JavaScript, as browser MCUmgr tools are)
updates the board end to end in headless Chromium on the mock bus: erase slot 1, upload in
chunks, read slot 1's hash, test it, reset, reconnect, and 1.1.0 runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smpsim.testing.webbt import WebBluetooth

HERE = Path(__file__).resolve().parent
WWW = HERE / "www"
IMAGE = HERE.parents[1] / "flash_images" / "app-1.1.0.bin"
UPDATE_TIMEOUT_S = 120.0


def update(page: Any, chunk: int, **options: Any) -> dict[str, Any]:
    args = ", ".join(f"{key}: {value!r}" for key, value in {"chunk": chunk, **options}.items())
    report: dict[str, Any] = page.evaluate(f"dfu.update({{url: 'app-1.1.0.bin', {args}}})",
                                           UPDATE_TIMEOUT_S)
    return report


@pytest.mark.parametrize("chunk", [64, 128, 244])
def test_browser_dfu(chunk: int, web_bluetooth: Callable[..., WebBluetooth]) -> None:
    bench = web_bluetooth(WWW, files={"app-1.1.0.bin": IMAGE})
    page = bench.open("index.html", click="#connect")
    page.wait_for_console("^connected$")
    report = update(page, chunk)

    size = IMAGE.stat().st_size
    assert report["bytes"] == size
    assert report["halvings"] == []
    assert set(report["chunks"]) == {chunk} | {size % chunk} - {0}
    assert sum(report["chunks"]) == size
    assert report["uploadedVersion"] == "1.1.0"
    assert report["pending"] is True
    # The reset's answer may or may not beat the drop of the link (at time scale 0 the board
    # reboots at once, not 250 ms later): like browser tools, the page needs only the drop.
    # The board runs the new image, in test mode (not confirmed), from slot 0.
    assert (report["activeVersion"], report["activeSlot"], report["activeConfirmed"]) == \
        ("1.1.0", 0, False)
    state = bench.board.state()
    assert state.online and state.boot_count == 2
    log = [m.text for m in page.console]
    assert log[:2] == [f"chose Zephyr ({log[0].split('(')[1][:-1]})", "connected"]
    assert "reset: the board dropped the link" in log
    assert not [m for m in page.console if m.type in ("error", "exception")], page.console


def test_chunk_halved_on_timeout(web_bluetooth: Callable[..., WebBluetooth],
                                 tmp_path: Path) -> None:
    """On a board whose MTU is 247 a 244-byte chunk does not fit in one write (its request is
    some 275 bytes): the board drops the write, the page times out and halves the chunk, as
    browser tools do since Web Bluetooth tells them no MTU."""
    profile = tmp_path / "board.toml"
    profile.write_text('extends = "nrf52840dk"\n[firmware.ble]\nmtu = 247\n', encoding="utf-8")
    bench = web_bluetooth(WWW, files={"app-1.1.0.bin": IMAGE}, profile=profile)
    page = bench.open("index.html", click="#connect")
    page.wait_for_console("^connected$")
    report = update(page, 244, timeoutMs=500)

    assert report["halvings"] == [{"offset": 0, "chunk": 122}]
    assert set(report["chunks"]) == {122} | {IMAGE.stat().st_size % 122} - {0}
    assert report["activeVersion"] == "1.1.0"
    assert page.wait_for_console("timeout at offset 0: chunk halved to 122")
    assert bench.board.ble_endpoint().mtu == 247
