"""docker/Dockerfile and docker/client.Dockerfile: the directives the image promises, and a
default command that smpsim's own parser accepts. (`make lint` runs hadolint on both; `make
docker-test` builds and runs them.)"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from smpsim import cli

from .files import DOCKER, REPO


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    assert not pending, "a continuation line ends the file"
    return [(word.upper(), rest.strip()) for word, _, rest in (ln.partition(" ") for ln in lines)]


def final_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last:]


def only(steps: list[tuple[str, str]], word: str) -> str:
    found = [args for w, args in steps if w == word]
    assert len(found) == 1, (word, found)
    return found[0]


SERVER = instructions(DOCKER / "Dockerfile")
CLIENT = instructions(DOCKER / "client.Dockerfile")


def test_base_is_a_build_arg_defaulting_to_bookworm_slim() -> None:
    for steps in (SERVER, CLIENT):
        assert steps[0] == ("ARG", "BASE=debian:bookworm-slim")
        bases = [args.split()[0] for word, args in steps if word == "FROM"]
        assert bases[0] == "${BASE}"
        # Every stage starts from the base or from an earlier stage of the same file.
        stages = {args.split()[-1] for word, args in steps if word == "FROM" and " AS " in args}
        assert all(base == "${BASE}" or base in stages for base in bases)


def test_python_is_debians_own() -> None:
    for steps in (SERVER, CLIENT):
        runs = " ".join(args for word, args in steps if word == "RUN")
        assert "apt-get install -y --no-install-recommends python3 " in runs
        assert "python3 -m venv" in runs


def test_runtime_directives() -> None:
    final = final_stage(SERVER)
    assert json.loads(only(final, "ENTRYPOINT")) == ["smpsim"]
    user = only(final, "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0, user
    assert only(final, "EXPOSE") == "1337/udp"
    assert only(final, "VOLUME") == "/data"
    healthcheck = only(final, "HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    assert json.loads(command) == ["smp-probe"]
    assert re.search(r"--interval=\d+s", options) and re.search(r"--retries=\d+", options)
    env = only(final, "ENV")
    assert "SMP_PROBE=127.0.0.1:1337" in env.split()
    copies = [args for word, args in final if word == "COPY"]
    assert "docker/smp_probe.py /usr/local/bin/smp-probe" in copies


def test_default_command_serves_both_wildcards_with_the_flash_on_the_volume() -> None:
    command = json.loads(only(final_stage(SERVER), "CMD"))
    args = cli._parser().parse_args(command)
    assert args.command == "run"
    assert args.udp == ["0.0.0.0:1337", "[::]:1337"]
    assert args.flash == Path(f"/data/flash-{args.profile}.bin")


def test_probe_is_executable_for_copy_to_keep_its_mode() -> None:
    probe = DOCKER / "smp_probe.py"
    assert probe.stat().st_mode & 0o111
    assert probe.read_text().startswith("#!/usr/bin/python3\n")


def test_client_pins_the_smpmgr_the_tests_pin() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = dict(req.split("==") for req in pyproject["project"]["optional-dependencies"]["test"])
    assert ("ARG", f"SMPMGR={pins['smpmgr']}") in CLIENT
    assert json.loads(only(final_stage(CLIENT), "ENTRYPOINT")) == ["smpmgr"]


def test_dockerignore_lets_every_copied_file_in() -> None:
    patterns = [line for line in (REPO / ".dockerignore").read_text().splitlines()
                if line and not line.startswith("#")]
    assert patterns[0] == "*", "an allowlist: everything else stays out of the context"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    for word, args in SERVER + CLIENT:
        if word == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert source.rstrip("/") in allowed, source
                assert (REPO / source).exists(), source
