"""The BLE transport through BlueZ: :mod:`.endpoint` (the SMP GATT service), :mod:`.link`
(the link-layer timing model), :mod:`.bluez` (adapter control), :mod:`.bless_fixes` (what bless
needs)."""
