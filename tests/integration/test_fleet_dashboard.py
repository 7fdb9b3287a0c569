"""The dashboard of a fleet's board (``smpsim fleet --control``, ``/?board=ID``) in a real
browser: the page follows and drives that board only, through the workers' proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext

from .browser import Dashboard, chromium
from .test_fleet import fleet
from .test_fleet_control import call, control_url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    with chromium(tmp_path / "chromium") as context:
        yield context


def test_the_page_of_one_board_of_a_fleet(browser: BrowserContext, tmp_path: Path) -> None:
    with fleet(tmp_path / "fleet", "--board", "fast:2", "--addresses", "127.0.1.235",
               "--workers", "2", "--control", "127.0.0.1:0", boards=3) as (_, lines, _m):
        url = control_url(lines)
        page = Dashboard.open(browser, f"{url}/?board=fast-0002")
        assert page.page.title() == "fast-0002 - smpsim dashboard"
        page.wait(lambda: page.page.text_content("#st-boots"), "1")
        page.page.once("dialog", lambda dialog: dialog.accept())
        page.page.click("[data-action=reset]")
        page.wait(lambda: page.page.text_content("#st-boots"), "2")
        page.wait(lambda: page.page.text_content("#st-state"), "online")
        assert [b["boot_count"] for b in call(f"{url}/api/boards")[1]] == [1, 2]
        assert page.errors == []

        first = Dashboard.open(browser, f"{url}/")
        assert first.page.url == f"{url}/?board=fast-0001"
        first.wait(lambda: first.page.text_content("#st-boots"), "1")
        assert first.errors == []
