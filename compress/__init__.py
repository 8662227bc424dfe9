"""edgepress compression pipeline: config, model/data loading, weight-changing stages, CLI.

Importing this package stays light: heavy libraries load inside the functions that need them.
"""

__version__ = "0.1.0"
