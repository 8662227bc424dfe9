"""Environment facts saved next to every artifact: package versions, CPU, Python."""

from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = ("edgepress", "torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime",
            "torch-pruning", "nncf", "accelerate", "numpy", "asyncssh")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine_info() -> dict[str, str | int]:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
            "cores": os.cpu_count() or 0}
