"""Replays of the real Zephyr smp_svr answers in ``tests/golden/`` against smpsim."""
