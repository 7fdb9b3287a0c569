"""MCUboot: image format, trailers, swap algorithms and the boot decision."""
