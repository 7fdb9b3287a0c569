"""Prints, after the run, how many records of each transcript were replayed and what is left."""

from __future__ import annotations

import pytest

from .records import SUMMARY_KEY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    lines = config.stash.get(SUMMARY_KEY, {})
    if lines:
        terminalreporter.write_sep("-", "conformance records")
        for file in sorted(lines):
            terminalreporter.write_line(lines[file])
