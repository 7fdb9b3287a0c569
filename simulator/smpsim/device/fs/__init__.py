"""The file system: :mod:`.vfs` (Zephyr's VFS calls and errno), :mod:`.littlefs` (littlefs on a
flash area through the NOR model) and :mod:`.app` (what smp_svr's ``main`` does with files)."""
