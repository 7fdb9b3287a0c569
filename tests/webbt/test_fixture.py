"""The ``web_bluetooth`` fixture (the pytest plugin's, ``smpsim[webbt]``) as a user of it sees
it: a page of theirs served, clicked, the chooser answered with the board, JavaScript evaluated,
the console read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from smpsim.testing.chromium import JavaScriptError
from smpsim.testing.mockbus import PERIPHERAL
from smpsim.testing.webbt import WebBluetooth

WWW = Path(__file__).resolve().parent / "www"
ECHO_PAGE = """<!doctype html>
<html><body>
<button id="go">Echo</button>
<script src="lib/cbor.js"></script>
<script src="lib/smp.js"></script>
<script>
const smp = new SmpBle((text) => console.info(text));
document.getElementById("go").addEventListener("click", async () => {
  await smp.choose();
  await smp.connect();
  const answer = await smp.send(OP_WRITE, 0, 0, { d: "hello from the page" }, 5000);
  console.log("echo:", answer.r);
  setTimeout(() => { throw new Error("uncaught, on purpose"); }, 0);
});
</script>
</body></html>
"""


@pytest.fixture
def echo_page(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text(ECHO_PAGE, encoding="utf-8")
    return tmp_path


def test_page_clicks_chooses_and_echoes(web_bluetooth: Callable[..., WebBluetooth],
                                        echo_page: Path) -> None:
    bench = web_bluetooth(echo_page, files={"lib/cbor.js": WWW / "cbor.js",
                                            "lib/smp.js": WWW / "smp.js"})
    assert bench.url("index.html").startswith("http://127.0.0.1:")
    page = bench.open("index.html", click="#go")
    message = page.wait_for_console("^echo:")
    assert (message.type, message.text) == ("log", "echo: hello from the page")
    assert page.wait_for_console("uncaught").type == "exception"
    assert [m.type for m in page.console][:2] == ["info", "info"]  # chose ..., connected
    assert page.console[0].text == f"chose Zephyr ({page.evaluate('smp.device.id')})"
    # The board saw the page's write, and answered in a notification.
    endpoint = bench.board.ble_endpoint()
    assert (endpoint.writes, endpoint.notifications) == (1, 1)
    assert page.evaluate("smp.connected") is True
    assert page.evaluate("Promise.resolve(6 * 7)") == 42
    with pytest.raises(JavaScriptError, match="no such thing"):
        page.evaluate("(() => { throw new Error('no such thing'); })()")


def test_board_options_and_a_second_chooser(web_bluetooth: Callable[..., WebBluetooth],
                                            echo_page: Path, tmp_path: Path) -> None:
    """The board takes EmulatedDevice's options; a page that opens the chooser again (after
    a reload) gets it answered with ``choose_device``, by address or by name."""
    profile = tmp_path / "board.toml"
    profile.write_text('extends = "nrf52840dk"\n[firmware.ble]\nname = "Bench board"\n',
                       encoding="utf-8")
    bench = web_bluetooth(echo_page, files={"lib/cbor.js": WWW / "cbor.js",
                                            "lib/smp.js": WWW / "smp.js"}, profile=profile)
    page = bench.open("index.html", click="#go", choose="Bench board")
    page.wait_for_console("^echo:")
    page.console.clear()  # the record is the test's to keep or drop
    page.goto(bench.url("index.html"))
    page.click("#go")
    assert page.choose_device(PERIPHERAL) == {"id": PERIPHERAL, "name": "Bench board"}
    assert page.wait_for_console("^echo:").text == "echo: hello from the page"
    assert bench.board.profile.firmware.ble.name == "Bench board"


def test_nothing_to_choose(web_bluetooth: Callable[..., WebBluetooth], echo_page: Path) -> None:
    """A chooser that never lists the device asked for: the error says so, with the console."""
    bench = web_bluetooth(echo_page, files={"lib/cbor.js": WWW / "cbor.js",
                                            "lib/smp.js": WWW / "smp.js"})
    page = bench.open("index.html")
    page.click("#go")
    with pytest.raises(TimeoutError, match="no device chooser listing 'Nordic_UART'"):
        page.choose_device("Nordic_UART", timeout_s=1.0)
