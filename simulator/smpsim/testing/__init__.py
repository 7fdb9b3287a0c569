"""Test harnesses for client developers: an emulated board in a background thread
(:mod:`.emulated`, what the pytest plugin's fixtures hand out), a mock BlueZ bus (BLE with no
radio) and headless Chromium for Web Bluetooth pages (these two need
``pip install 'smpsim[webbt]'``)."""
