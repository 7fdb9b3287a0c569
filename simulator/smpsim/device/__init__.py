"""The device model: the MCU and its peripherals. Knows nothing of SMP."""
