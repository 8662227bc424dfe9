"""edgepress compression pipeline: config, model/data loading, weight-changing stages, CLI.

The Python API (one verb per stage) is ``compress.api``:

    from compress.api import run, finetune, distill, prune, export, quantize, bench

Importing this package stays light: heavy libraries load inside the functions that need them.
"""

__version__ = "0.1.0"
