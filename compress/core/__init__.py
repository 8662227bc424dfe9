"""The base layer: errors, the config section base, safe file writes, console output, process ranks."""
