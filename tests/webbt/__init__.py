"""Web Bluetooth: a browser DFU page and the web_bluetooth fixture, in headless Chromium."""
