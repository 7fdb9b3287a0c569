"""The serial transport: :mod:`.line` (the UART's bytes, framing and pacing) and
:mod:`.endpoints` (a PTY or a real port carrying the line)."""
