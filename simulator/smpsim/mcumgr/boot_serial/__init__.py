"""MCUboot's serial recovery server (``boot/boot_serial``), sans-IO.

A much smaller SMP server than smp_svr's, with its own rules, served on the serial line while
MCUboot is in recovery (:attr:`smpsim.device.mcu.Device.in_recovery`):

* :mod:`.server`: one SMP packet in, at most one response out; the header and dispatch rules.
* :mod:`.cbor`: request maps read as MCUboot's ``zcbor_map_decode_bulk`` reads them.
* :mod:`.images`: the image list, image state set and slot info (img group).
* :mod:`.upload`: image upload, always into an image's primary slot.
* :mod:`.framing`: MCUboot's console lines and raw packets on the UART (its own receivers,
  with MCUboot's limits, and its own line encoder).
"""

from smpsim.mcumgr.boot_serial.server import BootSerialServer

__all__ = ["BootSerialServer"]
