"""A Zephyr-like shell: :mod:`.core` (instances, the command tree, output), :mod:`.args`
(argument splitting), :mod:`.commands` (the root commands), :mod:`.dummy` (the backend the SMP
shell group uses) and :mod:`.line` (the UART shell's line discipline)."""
