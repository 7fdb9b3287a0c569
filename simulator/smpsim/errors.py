"""Errors that never reach the wire: bad configuration and the like."""

from __future__ import annotations


class SmpsimError(Exception):
    """Base of smpsim's own errors."""


class ConfigError(SmpsimError):
    """A profile or an option is wrong; the message says what and where."""
