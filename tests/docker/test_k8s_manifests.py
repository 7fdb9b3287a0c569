"""docker/k8s/: every manifest valid against the Kubernetes schema kubernetes-validate ships
(offline, strict: no unknown fields), and the facts the fleet shards rely on."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .files import DOCKER
from .test_dockerfile import SERVER, final_stage, only

K8S = DOCKER / "k8s"
KUBERNETES = "1.37.0"
"""The newest schema kubernetes-validate 1.37.0 ships."""
MANIFESTS = sorted(K8S.glob("*.yaml"))


def documents() -> dict[str, dict[str, Any]]:
    """{kind: resource} over every manifest (one resource of each kind)."""
    found: dict[str, dict[str, Any]] = {}
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] not in found
            found[doc["kind"]] = doc
    return found


RESOURCES = documents()
STATEFULSET = RESOURCES["StatefulSet"]
SERVICE = RESOURCES["Service"]
POD = STATEFULSET["spec"]["template"]["spec"]
(CONTAINER,) = POD["containers"]


def test_the_schema_version_is_shipped() -> None:
    assert kubernetes_validate.utils.latest_version() == KUBERNETES


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_manifest_is_valid(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_invalid_manifest_is_refused() -> None:
    # The check has teeth: a misspelt field fails strict validation.
    broken = json.loads(json.dumps(STATEFULSET))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def fleet_options() -> dict[str, str]:
    args = CONTAINER["args"]
    assert args[0] == "fleet"
    return dict(zip(args[1::2], args[2::2], strict=True))


def boards_per_pod() -> int:
    profile, _, count = fleet_options()["--board"].partition(":")
    assert profile == "nrf52840dk"
    return int(count)


def test_each_pod_runs_a_fleet_shard_on_its_volume() -> None:
    options = fleet_options()
    assert options == {"--board": options["--board"], "--host": "0.0.0.0",
                       "--base-port": "1337", "--flash-dir": "/data"}
    (template,) = STATEFULSET["spec"]["volumeClaimTemplates"]
    assert CONTAINER["volumeMounts"] == [{"name": template["metadata"]["name"],
                                          "mountPath": "/data"}]
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_ports_are_one_per_board_in_pod_and_service() -> None:
    count = boards_per_pod()
    expected = [(f"board-{k}", 1337 + k) for k in range(count)]
    assert [(p["name"], p["containerPort"]) for p in CONTAINER["ports"]] == expected
    assert [(p["name"], p["port"]) for p in SERVICE["spec"]["ports"]] == expected
    assert {p["protocol"] for p in CONTAINER["ports"] + SERVICE["spec"]["ports"]} == {"UDP"}


def test_headless_service_selects_the_shards() -> None:
    assert SERVICE["spec"]["clusterIP"] == "None"
    assert STATEFULSET["spec"]["serviceName"] == SERVICE["metadata"]["name"]
    labels = STATEFULSET["spec"]["template"]["metadata"]["labels"]
    assert STATEFULSET["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert SERVICE["spec"]["selector"].items() <= labels.items()


def test_probes_send_the_healthcheck_echo_to_the_first_board() -> None:
    healthcheck = only(final_stage(SERVER), "HEALTHCHECK").partition(" CMD ")[2]
    probe = json.loads(healthcheck)[0]
    for name in ("readinessProbe", "livenessProbe"):
        command = CONTAINER[name]["exec"]["command"]
        assert command[0] == probe
        assert command[-1] == f"127.0.0.1:{fleet_options()['--base-port']}"
    # A swap keeps a board silent for tens of seconds: liveness must outwait it.
    liveness = CONTAINER["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 120


def test_runs_as_the_images_user_read_only() -> None:
    uid, _, gid = only(final_stage(SERVER), "USER").partition(":")
    context = POD["securityContext"]
    assert context["runAsNonRoot"] is True
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == \
        (int(uid), int(gid), int(gid))
    assert CONTAINER["securityContext"]["readOnlyRootFilesystem"] is True


def mebibytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)Mi", quantity)
    assert match, quantity
    return int(match[1])


def test_memory_follows_the_sizing_table() -> None:
    # README.md beside the manifests: request = process + boards x per-board figure.
    table = (K8S / "README.md").read_text()
    process = re.search(r"\| process \(Python, smpsim, one event loop\) \| (\d+) MiB", table)
    per_board = re.search(r"\| per board \| (\d+) MiB", table)
    assert process and per_board
    resources = CONTAINER["resources"]
    request = mebibytes(resources["requests"]["memory"])
    assert request == int(process[1]) + boards_per_pod() * int(per_board[1])
    assert mebibytes(resources["limits"]["memory"]) >= request
    assert "cpu" not in resources["limits"]
