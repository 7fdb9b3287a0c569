"""The flash as the control plane (and the dashboard) shows it: a sector full of an image's
bytes is programmed even though some of those bytes are 0xFF; the one where the image ends is
partly written; the rest of the slot is erased."""

from __future__ import annotations

from smpsim.config import load_profile
from smpsim.control.inspect import flash_map
from smpsim.device.mcu import Device


def test_sector_states_follow_what_was_written() -> None:
    device = Device(load_profile("nrf52840dk"))
    device.boot()
    sectors = flash_map(device)["sectors"]
    slot0 = [s for s in sectors if 0xC000 <= s["offset"] < 0x82000]
    image = [s for s in slot0 if "image body" in s["holds"]]
    flash = device.flash
    assert all(flash.read(s["offset"], s["size"]).count(0xFF) > 0 for s in image)
    assert [s["state"] for s in image] == ["programmed"] * (len(image) - 1) + ["partly"]
    assert "TLVs" in image[-1]["holds"]
    assert {s["state"] for s in slot0[len(image):]} == {"erased"}
