"""The ``edgepress`` command: a thin layer over :mod:`compress.api`."""
