"""kill -9 campaign: a killed ``smpsim run`` is a power cut, and a power cut loses nothing.

``make soak`` runs it (ROUNDS=50 by default). At time scale 1 on a fast-timing profile
(``kill_campaign.toml``), each round starts ``smpsim run`` on one flash file, has smpclient
upload an image, swap one in (test + reset), upload a file or save a setting (in turn), and
SIGKILLs the process at a random moment of that work (within the time it takes when nothing
kills it, measured first). Then it starts the board again on the same file and checks:

* it boots, and runs exactly the image it ran before or (a swap) the one swapped in; any image
  listed in a slot is one of the two, whole (a partial upload is never listed);
* littlefs mounted without formatting: a reference file written at the start is intact, and the
  file being written holds its old content or a prefix of its new one;
* the setting reads its last saved value or the new one.

Prints one line per round and a summary; exits 1 if any check failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from smpclient import SMPClient
from smpclient.requests.image_management import ImageStatesRead, ImageStatesWrite
from smpclient.requests.os_management import ResetWrite
from smpclient.requests.settings_management import ReadSetting, SaveSettings, WriteSetting
from smpclient.transport.udp import SMPUDPTransport

from smpsim.device.mcuboot.image import read_image

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = Path(sys.executable).parent
PROFILE = HERE / "kill_campaign.toml"
IMAGES = {name: (REPO / "flash_images" / f"{name}.bin").read_bytes()
          for name in ("factory-1.0.0", "app-1.1.0")}
ROUNDS = int(os.environ.get("ROUNDS", "50"))
SEED = int(os.environ.get("SEED", "1"))
FILE, REF = "/lfs1/kill.bin", "/lfs1/ref.bin"
KINDS = ("upload", "swap", "fs write", "settings save")
RESET_S = 0.25
"""From os reset's answer to the reboot (MCUMGR_GRP_OS_RESET_MS)."""


def image_hash(image: bytes) -> bytes:
    """The SHA-256 TLV of an MCUboot image (what img_mgmt reports as its hash)."""
    return read_image(lambda off, n: image[off:off + n], len(image) + 1).hash


HASHES = {image_hash(image): name for name, image in IMAGES.items()}


class PortUDP(SMPUDPTransport):
    """smpclient's UDP transport on the board's ephemeral port."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self._port = port

    async def connect(self, address: str, timeout_s: float) -> None:
        await super().connect(address, timeout_s, port=self._port)


class Board:
    """``smpsim run`` on the campaign's flash file."""

    def __init__(self, flash: Path) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "smpsim"), "run", "--profile", str(PROFILE), "--flash", str(flash),
             "--time-scale", "1", "--udp", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"smpsim did not start: {self.stop()}")
        self.port = int(line.rsplit(":", 1)[1])

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def boots(self) -> int:
        """Boots of the application so far (its banner on the console)."""
        return sum("*** Booting Zephyr OS" in line for line in self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    def stop(self) -> str:
        """End it (SIGTERM, if still running) and return what it printed on stderr."""
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait()
        self._reader.join(5)
        return "".join(self.lines)

    async def session(self, body: Callable[[SMPClient], Awaitable[Any]]) -> Any:
        async with SMPClient(PortUDP(self.port), "127.0.0.1", timeout_s=1.0) as client:
            return await body(client)


async def upload(client: SMPClient, image: bytes) -> None:
    async for _ in client.upload(image):
        pass


async def wait_online(board: Board) -> None:
    """Until the board answers."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            await board.session(lambda c: c.request(ImageStatesRead(), timeout_s=0.5))
            return
        except Exception:
            await asyncio.sleep(0.05)
    raise RuntimeError("the board did not come back")


async def wait_booted(board: Board, boots: int) -> None:
    """Until the application has started more than ``boots`` times (MCUboot's swap is over)."""
    deadline = time.monotonic() + 60
    while board.boots() <= boots:
        if time.monotonic() > deadline:
            raise RuntimeError("the board did not boot again")
        await asyncio.sleep(0.002)


class Campaign:
    def __init__(self, flash: Path) -> None:
        self.flash = flash
        self.rng = random.Random(SEED)
        self.running = "factory-1.0.0"
        self.file: bytes = b""
        self.setting = b"hello"
        self.ref = hashlib.shake_256(b"reference").digest(3000)
        self.failures: list[str] = []

    def other(self) -> str:
        return "app-1.1.0" if self.running == "factory-1.0.0" else "factory-1.0.0"

    # -- the work a kill interrupts --------------------------------------------------------

    async def work(self, kind: str, board: Board, client: SMPClient, round_no: int) -> None:
        """The round's work, on a client already connected."""
        if kind == "upload":
            await upload(client, IMAGES[self.other()])
        elif kind == "swap":  # the reset's boot: MCUboot swaps the tested image in
            boots = board.boots()
            await client.request(ResetWrite())
            await wait_booted(board, boots)
        elif kind == "fs write":
            await _upload_file(client, file_content(round_no), FILE)
        else:
            await client.request(WriteSetting(name="app/greeting", val=b"v%d" % round_no))
            await client.request(SaveSettings())

    async def prepare(self, kind: str, client: SMPClient) -> None:
        """What must be in place before the work: for a swap, the other image, tested."""
        if kind == "swap":
            other = IMAGES[self.other()]
            await upload(client, other)
            await client.request(ImageStatesWrite(hash=image_hash(other), confirm=False))

    # -- a round -----------------------------------------------------------------------------

    async def calibrate(self, kind: str, round_no: int) -> float:
        """How long ``kind`` takes when nothing kills it (the round is a normal one)."""
        board = Board(self.flash)

        async def timed(client: SMPClient) -> float:
            await self.prepare(kind, client)
            start = time.monotonic()
            await self.work(kind, board, client, round_no)
            return time.monotonic() - start
        try:
            took: float = await board.session(timed)
        finally:
            board.stop()
        await self.check(kind, round_no, killed_at=None)
        return took

    async def round(self, kind: str, round_no: int, duration: float) -> str:
        board = Board(self.flash)
        # A request changes the flash at once (its busy time is waited out after), so kills
        # matter between requests; a boot's flash work is lived at its pace, so a swap's kills
        # fall after the reset request (250 ms before the reboot) until the swap is over.
        delay = self.rng.uniform(RESET_S if kind == "swap" else 0.0, duration)

        async def killed(client: SMPClient) -> None:
            await self.prepare(kind, client)
            work = asyncio.ensure_future(self.work(kind, board, client, round_no))

            def kill() -> None:
                board.kill()
                work.cancel()  # the client would wait out its timeouts and retries
            asyncio.get_running_loop().call_later(delay, kill)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await work
        with contextlib.suppress(Exception):  # the kill cuts the client short
            await board.session(killed)
        board.kill()
        log = board.stop()
        landed = ""
        if kind == "swap":
            swap = log.rfind("Starting swap")
            landed = "before the swap" if swap < 0 else \
                "after the swap" if "*** Booting Zephyr OS" in log[swap:] else "mid-swap"
        return await self.check(kind, round_no, killed_at=delay, landed=landed)

    async def check(self, kind: str, round_no: int, killed_at: float | None,
                    landed: str = "") -> str:
        board = Board(self.flash)
        try:
            await wait_online(board)
            states = await board.session(lambda c: c.request(ImageStatesRead()))
            found = {s.slot: HASHES.get(bytes(s.hash or b"")) for s in states.images}
            problems = []
            if None in found.values():
                problems.append(f"a slot holds an image that is neither: {states.images}")
            running = found.get(0)
            allowed = {self.running} | ({self.other()} if kind == "swap" else set())
            if running not in allowed:
                problems.append(f"runs {running}, expected one of {sorted(allowed)}")
            if kind == "upload":
                landed = "slot 1 whole" if found.get(1) == self.other() else "slot 1 partial"
            if kind == "swap" and running == self.other():
                await board.session(lambda c: c.request(ImageStatesWrite(confirm=True)))
            if running is not None:
                self.running = running
            ref = await board.session(lambda c: c.download_file(REF))
            if ref != self.ref:
                problems.append("the reference file changed (littlefs lost data)")
            try:
                data = await board.session(lambda c: c.download_file(FILE))
            except Exception:
                data = b""
            new = file_content(round_no)
            if kind == "fs write" and data not in (self.file,) and not new.startswith(data):
                problems.append(f"{FILE} holds {len(data)} bytes that are neither old nor new")
            if kind != "fs write" and data != self.file:
                problems.append(f"{FILE} changed though nobody wrote it")
            if kind == "fs write":
                landed = "file old" if data == self.file and data != new else \
                    "file new" if data == new else f"file {len(data)} B of new"
            self.file = data
            value = (await board.session(
                lambda c: c.request(ReadSetting(name="app/greeting")))).val
            if value not in (self.setting, b"v%d" % round_no) or \
                    (kind != "settings save" and value != self.setting):
                problems.append(f"app/greeting reads {value!r}, saved was {self.setting!r}")
            if kind == "settings save":
                landed = "saved" if value == b"v%d" % round_no else "not saved"
            self.setting = value
        finally:
            log = board.stop()
        if "formatting" in log:
            problems.append("littlefs was formatted at boot")
        when = "no kill" if killed_at is None else f"killed at {killed_at:5.2f} s"
        verdict = "ok" if not problems else "FAILED: " + "; ".join(problems)
        if problems:
            self.failures.append(f"round {round_no} ({kind}): {verdict}")
        return f"{kind:14} {when} ({landed}): runs {self.running}, file " \
               f"{len(self.file)} B, setting {self.setting.decode(errors='replace')!r}: {verdict}"


def file_content(round_no: int) -> bytes:
    """What the fs write of round ``round_no`` writes (three chunks; littlefs has 24 KiB)."""
    return hashlib.shake_256(b"file %d" % round_no).digest(4000)


async def _upload_file(client: SMPClient, content: bytes, path: str) -> None:
    async for _ in client.upload_file(content, path):
        pass


async def main() -> int:
    logging.getLogger("smpclient").setLevel(logging.CRITICAL)  # the kills' timeouts, expected
    with tempfile.TemporaryDirectory() as tmp:
        campaign = Campaign(Path(tmp) / "flash.bin")
        first = Board(campaign.flash)
        await first.session(lambda c: _upload_file(c, campaign.ref, REF))
        first.stop()
        durations = {}
        for kind in KINDS:
            durations[kind] = await campaign.calibrate(kind, 0)
        print("uninterrupted: " + ", ".join(f"{k} {v:.2f} s" for k, v in durations.items()),
              flush=True)
        for round_no in range(1, ROUNDS + 1):
            kind = KINDS[(round_no - 1) % len(KINDS)]
            line = await campaign.round(kind, round_no, durations[kind])
            print(f"round {round_no:2}: {line}", flush=True)
    counts = {k: sum(1 for r in range(1, ROUNDS + 1) if KINDS[(r - 1) % 4] == k) for k in KINDS}
    print(f"{ROUNDS} rounds of SIGKILL (" + ", ".join(f"{n} {k}" for k, n in counts.items())
          + f"): {len(campaign.failures)} failed")
    for failure in campaign.failures:
        print(f"  {failure}")
    return 1 if campaign.failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
