"""Zephyr's settings subsystem: :mod:`.store` (handlers, RAM values, the API) and :mod:`.log`
(the storage backend in a flash partition)."""
