"""Unit and property tests: the sans-IO SMP core, the device model and the profiles."""
