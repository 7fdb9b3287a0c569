"""Test harnesses for client developers: a mock BlueZ bus (BLE with no radio) and headless
Chromium for Web Bluetooth pages (``pip install 'smpsim[webbt]'``)."""
