"""The sans-IO SMP core: pure functions of bytes, no I/O, no time."""
