"""``make fuzz``: coverage-guided fuzzing (atheris) of every target in ``targets.py``.

    FUZZ_S=600 .venv/bin/python -m tests.fuzz.run           # ten minutes shared by the targets
    FUZZ_INPUTS=1000000 .venv/bin/python -m tests.fuzz.run  # a million inputs shared by them
    .venv/bin/python -m tests.fuzz.run server/fast ble      # targets whose name has these
    .venv/bin/python -m tests.fuzz.run --keep-seeds         # refresh the seeds from var/fuzz/

Each target runs in a process of its own (``one.py``) for its share of the time (``FUZZ_S``,
default 60) or of the inputs (``FUZZ_INPUTS``), keeping what libFuzzer learns in
``var/fuzz/<target>/``. A crash (an exception, or a handler failure logged) leaves a reproducer
in ``tests/fuzz/corpus/<target>/``, which ``test_fuzz.py`` replays at every ``make test``; the
target then goes on with the time it has left (three crashes end it). Prints inputs, units
(datagrams, reads, writes) and crashes per target; exits 1 on a crash.

``corpus/<target>/seeds.cbor`` holds a sample of what libFuzzer learned in a long run: a fresh
``var/fuzz/<target>/`` starts from it, and ``make test`` replays it like a reproducer.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.targets import Target, decode_corpus, encode_corpus, targets

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CORPUS = HERE / "corpus"
"""Reproducers of crashes, kept in the repo as regression tests."""
WORK = REPO / "var" / "fuzz"
"""What libFuzzer learns (inputs that reach new code), kept between runs, not in the repo."""
MAX_CRASHES = 3
SEEDS = 100
"""Inputs kept per target by ``--keep-seeds`` (a deterministic sample, by file name)."""


@dataclass
class Result:
    target: Target
    inputs: int = 0
    units: int = 0
    seconds: float = 0.0
    crashes: list[str] = field(default_factory=list)


def fuzz(target: Target, seconds: float | None, runs: int | None, seed: int) -> Result:
    """Run ``target`` until its time or runs are spent (or it crashed three times)."""
    result = Result(target)
    work = WORK / target.folder
    work.mkdir(parents=True, exist_ok=True)
    seeds = CORPUS / target.folder / "seeds.cbor"
    if seeds.exists() and not any(work.iterdir()):
        for data in decode_corpus(seeds.read_bytes()):
            (work / hashlib.sha1(data).hexdigest()).write_bytes(data)  # libFuzzer's naming
    start = time.monotonic()
    while len(result.crashes) < MAX_CRASHES:
        left_s = None if seconds is None else seconds - (time.monotonic() - start)
        left_runs = None if runs is None else runs - result.inputs
        if (left_s is not None and left_s < 1) or (left_runs is not None and left_runs <= 0):
            break
        with tempfile.TemporaryDirectory() as tmp:
            stats = Path(tmp) / "stats.json"
            options = [f"-seed={seed + len(result.crashes)}", "-timeout=30",
                       "-rss_limit_mb=4096", f"-artifact_prefix={tmp}/", "-print_final_stats=1"]
            options.append(f"-max_total_time={math.ceil(left_s)}" if left_s is not None
                           else f"-runs={left_runs}")
            proc = subprocess.run(
                [sys.executable, "-m", "tests.fuzz.one", target.name, str(stats),
                 str(CORPUS / target.folder), *options, str(work)],
                cwd=REPO, capture_output=True, text=True, check=False)
            done = stats.read_text() if stats.exists() else ""
        counts = json.loads(done) if done else {"inputs": 0, "units": 0}
        runs_done = _runs(proc.stderr)
        # libFuzzer's own count is exact; the units were last written up to 0.5 s before.
        if runs_done is not None and counts["inputs"]:
            counts["units"] = round(counts["units"] * runs_done / counts["inputs"])
            counts["inputs"] = runs_done
        result.inputs += counts["inputs"]
        result.units += counts["units"]
        if proc.returncode == 0:
            break
        output = proc.stdout + proc.stderr  # atheris prints the exception on stdout
        crash = re.search(r"Crash: (.*)", output)
        text = crash.group(1) if crash else f"exit {proc.returncode} (no reproducer)"
        result.crashes.append(text)
        print(f"CRASH {text}", flush=True)
        if not crash:  # libFuzzer's own finding (a timeout, memory): show its report
            print(output[-3000:], file=sys.stderr)
    result.seconds = time.monotonic() - start
    return result


def _runs(stderr: str) -> int | None:
    found = re.findall(r"Done (\d+) runs in", stderr)
    if found:
        return int(found[-1])
    found = re.findall(r"stat::number_of_executed_units: (\d+)", stderr)
    return int(found[-1]) if found else None


def keep_seeds() -> None:
    """Write each target's seeds from what libFuzzer learned in ``var/fuzz/``."""
    for target in targets():
        files = sorted((WORK / target.folder).glob("*"))[:SEEDS]
        if files:
            folder = CORPUS / target.folder
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "seeds.cbor").write_bytes(encode_corpus([f.read_bytes() for f in files]))
            print(f"{target.name:44} {len(files):4} seeds")


def main(argv: list[str]) -> int:
    if argv == ["--keep-seeds"]:
        keep_seeds()
        return 0
    budget = float(os.environ.get("FUZZ_S", "60"))
    limit = int(os.environ.get("FUZZ_INPUTS", "0"))
    seed = int(os.environ.get("FUZZ_SEED", "1"))
    chosen = [t for t in targets() if not argv or any(word in t.name for word in argv)]
    if not chosen:
        print(f"no target matches {' '.join(argv)}", file=sys.stderr)
        return 2
    share_s = None if limit else max(budget / len(chosen), 1.0)
    share_runs = math.ceil(limit / len(chosen)) if limit else None
    print(f"fuzzing {len(chosen)} targets, "
          + (f"{share_runs} inputs each" if limit else f"{share_s:.0f} s each")
          + f", seed {seed}", flush=True)
    print(f"{'target':44} {'inputs':>9} {'units':>9} {'inputs/s':>8} {'crashes':>7}", flush=True)
    results = []
    for target in chosen:
        result = fuzz(target, share_s, share_runs, seed)
        results.append(result)
        print(f"{target.name:44} {result.inputs:9} {result.units:9} "
              f"{result.inputs / max(result.seconds, 1e-9):8.0f} {len(result.crashes):7}",
              flush=True)
    inputs = sum(r.inputs for r in results)
    units = sum(r.units for r in results)
    crashes = sum(len(r.crashes) for r in results)
    took = sum(r.seconds for r in results)
    print(f"{'total':44} {inputs:9} {units:9} {inputs / max(took, 1e-9):8.0f} {crashes:7}"
          f"   in {took:.0f} s")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
