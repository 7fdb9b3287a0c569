"""docker/compose.yaml: services, images, volumes and commands that fit together, in the schema
subset docker-compose 1.29 and Compose v2 both accept. (`make docker-test` runs it.)"""

from __future__ import annotations

from typing import Any

import yaml

from .files import DOCKER

COMPOSE: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def test_version_and_services() -> None:
    assert COMPOSE["version"] == "3.8"
    assert set(COMPOSE) == {"version", "services", "volumes"}
    assert set(SERVICES) == {"board", "client", "fleet"}


def test_builds_point_at_the_dockerfiles() -> None:
    for name, dockerfile in (("board", "Dockerfile"), ("client", "client.Dockerfile")):
        build = SERVICES[name]["build"]
        context = (DOCKER / build["context"]).resolve()
        assert context == DOCKER.parent
        assert (context / build["dockerfile"]) == DOCKER / dockerfile
    # The fleet runs the board's image with another command.
    assert SERVICES["fleet"]["image"] == SERVICES["board"]["image"] == "smpsim"
    assert "build" not in SERVICES["fleet"]


def test_named_volumes_are_declared_and_used() -> None:
    used = set()
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            assert target == "/data"
            used.add(source)
    assert used == set(COMPOSE["volumes"]) == {"board-data", "fleet-data"}


def test_board_serves_the_image_default_on_a_publishable_port() -> None:
    board = SERVICES["board"]
    assert "command" not in board and "entrypoint" not in board
    assert board["ports"] == ["${SMPSIM_PUBLISH:-1337}:1337/udp"]
    assert board["read_only"] is True and board["cap_drop"] == ["ALL"]


def test_client_waits_for_a_healthy_board_and_reaches_it_by_name() -> None:
    client = SERVICES["client"]
    assert client["depends_on"] == {"board": {"condition": "service_healthy"}}
    script = " ".join(client["command"])
    assert "smpmgr --ip board os echo" in script
    assert "smpmgr --ip board image state-read" in script


def test_fleet_only_with_its_profile() -> None:
    fleet = SERVICES["fleet"]
    assert fleet["profiles"] == ["fleet"]
    assert all("profiles" not in SERVICES[name] for name in ("board", "client"))
    command = fleet["command"]
    assert command[0] == "fleet"
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options == {"--board": "nrf52840dk:4", "--flash-dir": "/data", "--host": "0.0.0.0",
                       "--base-port": "1337"}

