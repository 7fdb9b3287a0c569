"""Replays of the real Zephyr smp_svr answers in ``../shared/conformance/`` against smpsim."""
