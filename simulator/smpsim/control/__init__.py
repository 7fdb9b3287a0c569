"""The control plane: watch a board, act on it and inject faults, from HTTP, ``smpsim ctl``,
the dashboard or a test. :mod:`.plane` is the one object they all use; :mod:`.events` the event
stream, :mod:`.faults` the faults users can ask for, :mod:`.inspect` the slots and the flash as a
probe reads them, :mod:`.rehearsal` the length of a swap before it runs."""
