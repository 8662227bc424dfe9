"""What the benchmark ran on: CPU model, cores, ISA flags, GPU, library versions."""

from __future__ import annotations

import shutil
import subprocess
from importlib import metadata
from typing import Any

from benchmarks.remote_runner import cpu_info

EXTRA_PACKAGES = ("asyncssh", "adbutils", "tensorrt", "onnxruntime-gpu")


def gpu_info() -> dict[str, Any] | None:
    """Name, memory and driver of the first CUDA GPU, or None when there is none."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    info: dict[str, Any] = {"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1),
                            "cuda": torch.version.cuda, "count": torch.cuda.device_count()}
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            info["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
        except (OSError, subprocess.TimeoutExpired):
            info["driver"] = None
    return info


def library_versions() -> dict[str, str]:
    """Versions of the packages that shape the numbers (edgepress's list plus remote/GPU extras)."""
    from compress.run.runinfo import package_versions

    versions = package_versions()
    for name in EXTRA_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def local_device_info() -> dict[str, Any]:
    """The full record of this machine for report.json."""
    import platform

    info: dict[str, Any] = cpu_info()
    info.update({"platform": platform.platform(), "python": platform.python_version(), "hostname": platform.node()})
    info["gpu"] = gpu_info()
    info["versions"] = library_versions()
    try:
        import onnxruntime as ort

        info["ort_providers"] = ort.get_available_providers()
    except ImportError:
        info["ort_providers"] = []
    return info
