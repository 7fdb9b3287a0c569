"""Several worker processes when one core is not enough: the boards are split into contiguous
shares, each served by a forked worker on the sockets the parent bound; the parent gathers
their ready reports into one set of ready lines and one manifest, forwards SIGTERM and Ctrl-C,
and stops the fleet if a worker dies."""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import signal
import socket
import sys
import typing
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from smpsim.errors import ConfigError
from smpsim.fleet import shard
from smpsim.fleet.control import ControlOptions, for_worker

if typing.TYPE_CHECKING:
    from smpsim.fleet.proxy import ProxyThread

STOP_TIMEOUT_S = 30.0
"""How long a worker may take to stop its boards before it is killed."""


def shares(count: int, workers: int) -> list[range]:
    """Contiguous index ranges, one per worker, sizes differing by at most one."""
    base, extra = divmod(count, workers)
    ranges, start = [], 0
    for index in range(workers):
        size = base + (index < extra)
        ranges.append(range(start, start + size))
        start += size
    return ranges


def _worker(part: shard.Shard, others: Sequence[socket.socket], report: Connection,
            parent: int) -> None:
    # Ctrl-C reaches every process of the terminal; the parent turns it into SIGTERM for us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sock in others:
        sock.close()

    def ready(lines: list[str], entries: list[dict[str, Any]]) -> None:
        report.send(("ready", lines, entries))

    try:
        shard.run(part, ready, parent)
    except ConfigError as exc:
        report.send(("error", str(exc)))
        raise SystemExit(2) from None


class Supervisor:
    """The parent of the workers."""

    def __init__(self, fleet: shard.Shard, workers: int,
                 api: ControlOptions | None = None) -> None:
        self.fleet = fleet
        """Every board (the parent's whole fleet, split into the workers' shards)."""
        self.count = workers
        self.stopping = False
        self.api = api
        """The fleet's control API (``--control``), bound: served here, by a proxy to the
        workers' own APIs."""
        self.worker_apis = [for_worker() for _ in range(workers)] if api is not None else []
        self.proxy: ProxyThread | None = None

    def run(self, ready: shard.Ready) -> int:
        """Serve the fleet until SIGTERM or SIGINT; the exit status (2: a worker's
        ConfigError, 1: a worker died)."""
        # Fork before any thread or event loop exists in this process: the workers inherit
        # the bound sockets, and nothing half-locked.
        ctx = multiprocessing.get_context("fork")
        procs, reports = [], []
        fleet = self.fleet
        for index, share in enumerate(shares(len(fleet.boards), self.count)):
            part = dataclasses.replace(fleet, boards=fleet.boards[share.start:share.stop],
                                       sockets=fleet.sockets[share.start:share.stop],
                                       worker=index, control=self.worker_apis[index]
                                       if self.worker_apis else None)
            others = [s for i, s in enumerate(fleet.sockets) if i not in share]
            if self.api is not None and self.api.sock is not None:
                others.append(self.api.sock)
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, name=f"smpsim fleet worker {index}",
                               args=(part, others, send, os.getpid()))
            proc.start()
            send.close()
            procs.append(proc)
            reports.append(receive)
        for sock in fleet.sockets:  # the workers hold them now
            sock.close()
        previous = {sig: signal.signal(sig, lambda *_: self._stop(procs))
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return self._supervise(procs, reports, ready)
        finally:
            if self.proxy is not None:
                self.proxy.stop()
            self._stop(procs)
            for proc in procs:
                proc.join(STOP_TIMEOUT_S)
                if proc.exitcode is None:
                    proc.kill()
                    proc.join()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _supervise(self, procs: Sequence[multiprocessing.process.BaseProcess],
                   reports: list[Connection], ready: shard.Ready) -> int:
        got: dict[int, tuple[list[str], list[dict[str, Any]]]] = {}
        listening = dict(enumerate(reports))

        def receive(index: int) -> None:
            """What worker ``index`` has reported so far; raises its ConfigError."""
            report = listening.get(index)
            try:
                while report is not None and report.poll():
                    message = report.recv()
                    if message[0] == "error":
                        raise ConfigError(message[1])
                    got[index] = (message[1], message[2])
                    if len(got) == len(procs):
                        entries = [entry for i in sorted(got) for entry in got[i][1]]
                        self._serve_api(entries)
                        ready([line for i in sorted(got) for line in got[i][0]], entries)
            except (EOFError, OSError):  # the worker is gone
                del listening[index]

        running = {p.sentinel: i for i, p in enumerate(procs)}
        while running:
            by_report = {report: i for i, report in listening.items()}
            for item in wait([*running, *by_report]):
                if isinstance(item, Connection):
                    receive(by_report[item])
                    continue
                index = running.pop(typing.cast(int, item))
                receive(index)  # its last words come before its exit
                procs[index].join()
                if not self.stopping:
                    print(f"smpsim: fleet worker {index} exited "
                          f"({procs[index].exitcode}); stopping the fleet",
                          file=sys.stderr, flush=True)
                    return 1
        return 0

    def _serve_api(self, entries: list[dict[str, Any]]) -> None:
        """Every worker is up: serve the fleet's API in front of theirs; the manifest names
        the fleet's address for each board."""
        if self.api is None:
            return
        from smpsim.fleet.proxy import ProxyThread, Worker

        # A worker's API is on a port it bound itself: its entries name it.
        urls = {entry["worker"]: entry["control"].partition("/api/boards/")[0]
                for entry in entries}
        workers = {index: Worker(urls[index], api.token)
                   for index, api in enumerate(self.worker_apis)}
        self.proxy = ProxyThread(self.api, entries, workers)
        self.proxy.start()
        for entry in entries:
            entry["control"] = f"{self.api.url}/api/boards/{entry['id']}"

    def _stop(self, procs: Sequence[multiprocessing.process.BaseProcess]) -> None:
        self.stopping = True
        for proc in procs:
            if proc.exitcode is None and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
