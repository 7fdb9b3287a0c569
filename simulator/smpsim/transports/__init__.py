"""Transports: the only place with sockets, PTYs, BLE and sleeps."""
