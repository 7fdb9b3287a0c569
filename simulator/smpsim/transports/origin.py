"""Where a request unit came from: what the runner, link faults and the control plane's trace
tell units apart by. A module of its own so that serving SMP does not import the link fault
machinery until a fault is injected."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    """Where a unit came from: the medium and the peer (address, port, central)."""

    medium: str
    peer: str = ""
