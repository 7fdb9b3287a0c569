"""The fuzz targets at every ``make test``: each crash ``make fuzz`` ever found stays fixed (its
reproducer in ``corpus/`` replays clean, as do every target's seeds from a long run), a short
seeded run of every target finds nothing, a handler failure counts as a crash, and atheris
itself runs (``make fuzz`` is not left to rot)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from smpsim.mcumgr import server

from . import targets as t

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
SMOKE_INPUTS = 300


def test_every_reproducer_replays_clean() -> None:
    seeded = {p.parent.name for p in CORPUS.glob("*/seeds.cbor")}
    assert seeded == {target.folder for target in t.targets()}
    files = sorted(CORPUS.glob("*/*.cbor"))
    for path in files:
        failures = t.replay(t.by_name(path.parent.name), t.decode_corpus(path.read_bytes()))
        assert not failures, f"{path.relative_to(HERE)}: {failures}"


@pytest.mark.parametrize("target", t.targets(), ids=lambda target: target.name)
def test_smoke(target: t.Target) -> None:
    rng = random.Random(target.name)
    inputs = [rng.randbytes(rng.randrange(1, 600)) for _ in range(SMOKE_INPUTS)]
    assert t.replay(target, inputs) == []


def test_a_handler_failure_is_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    encode = server.encode

    def broken(value: object) -> bytes:
        if isinstance(value, dict) and "r" in value:  # an os echo's answer
            raise KeyError("a bug")
        return encode(value)
    monkeypatch.setattr(server, "encode", broken)
    rng = random.Random(1)
    failures = t.replay(t.by_name("server/native_sim_udp"),
                        [rng.randbytes(200) for _ in range(SMOKE_INPUTS)])
    assert failures and "handler 0/0 failed: KeyError('a bug')" in failures[0]


def test_atheris_runs_a_target(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.one", "server/native_sim_udp", str(stats),
         str(tmp_path / "repro"), "-runs=3000", "-seed=1", f"-artifact_prefix={tmp_path}/"],
        cwd=HERE.parents[1], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Done 3000 runs" in proc.stderr
    assert json.loads(stats.read_text())["inputs"] > 0
    assert not (tmp_path / "repro").exists()
