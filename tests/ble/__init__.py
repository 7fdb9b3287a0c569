"""BLE tests: smpsim's bless transport and real BLE clients on a mock BlueZ bus (BlueZoo)."""
