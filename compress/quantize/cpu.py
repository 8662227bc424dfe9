"""CPU instruction-set detection and the INT8 data types ONNX Runtime recommends for it.

ONNX Runtime's guidance (``quantize_static`` docstring, "Choosing parameters for CPU inference";
optimum's ``AutoQuantizationConfig.avx2/avx512/avx512_vnni/arm64`` profiles):

* x86 with VNNI (AVX512-VNNI, AVX-VNNI) or AMX: uint8 activations, int8 weights, full range.
* x86 without VNNI (AVX2, AVX-512F): the u8 x s8 kernels (vpmaddubsw) can saturate their 16-bit
  intermediates; quantize weights to 7 bits (``reduce_range``) or use uint8 weights (U8U8).
* ARM with the dot-product extension: int8 weights (and int8 activations for static QDQ).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CpuInfo:
    """What the quantizer needs to know about the CPU."""

    arch: str
    model: str = ""
    flags: set[str] = field(default_factory=set)

    @property
    def is_x86(self) -> bool:
        return self.arch in ("x86_64", "amd64", "i386", "i686")

    @property
    def is_arm(self) -> bool:
        return self.arch in ("aarch64", "arm64") or self.arch.startswith("arm")

    @property
    def avx2(self) -> bool:
        return "avx2" in self.flags

    @property
    def avx512(self) -> bool:
        return "avx512f" in self.flags

    @property
    def vnni(self) -> bool:
        return bool({"avx512_vnni", "avx_vnni", "avx512vnni", "avxvnni"} & self.flags)

    @property
    def amx(self) -> bool:
        return bool({"amx_int8", "amx_tile"} & self.flags)

    @property
    def arm_dotprod(self) -> bool:
        return bool({"asimddp", "dotprod"} & self.flags)

    @property
    def isa(self) -> str:
        """The most capable int8 instruction family found, e.g. ``avx2``, ``avx512-vnni``, ``arm-dotprod``."""
        if self.is_x86:
            if self.amx:
                return "amx"
            if self.vnni:
                return "avx512-vnni" if "avx512_vnni" in self.flags else "avx-vnni"
            if self.avx512:
                return "avx512"
            return "avx2" if self.avx2 else "sse"
        if self.is_arm:
            return "arm-dotprod" if self.arm_dotprod else "arm-neon"
        return "unknown"

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "model": self.model, "isa": self.isa, "avx2": self.avx2, "avx512": self.avx512,
                "vnni": self.vnni, "amx": self.amx, "arm_dotprod": self.arm_dotprod}


def parse_cpuinfo(text: str, arch: str) -> CpuInfo:
    """CpuInfo from /proc/cpuinfo text of a machine with architecture ``arch`` (the device runner's parser)."""
    from benchmarks.remote_runner import cpu_info

    return cpu_from_device_info(cpu_info(text, arch.lower()))


def detect_cpu(cpuinfo_path: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """The CPU this process runs on: the same probe a device runs (``benchmarks.remote_runner.cpu_info``).

    Without /proc/cpuinfo (macOS, Windows) only the architecture is known (Apple silicon: plus its dot product).
    """
    from benchmarks.remote_runner import cpu_info

    text = cpuinfo_path.read_text(errors="replace") if cpuinfo_path.is_file() else ""
    return cpu_from_device_info(cpu_info(text))


def cpu_from_device_info(info: dict[str, Any]) -> CpuInfo:
    """CpuInfo from a device record (``benchmarks.remote_runner.cpu_info``: ``arch``, ``cpu``, ``isa`` flags).

    The runner keeps every flag the recipe reads (avx2, avx512*, *vnni*, amx*, asimddp/dotprod), so a remote
    device's probe chooses the same recipe as running ``detect_cpu()`` on that device would.
    """
    arch = str(info.get("arch") or "").lower()
    if not arch:
        raise ValueError(f"device record has no 'arch' (keys: {sorted(info)})")
    return CpuInfo(arch=arch, model=str(info.get("cpu") or ""), flags={str(f) for f in info.get("isa") or []})


@dataclass
class Int8Recipe:
    """Weight/activation types and reduce_range for this CPU, with the reason."""

    weight_type: str  # qint8 | quint8
    activation_type: str  # qint8 | quint8 (static/NNCF; dynamic activations are always uint8 in ORT)
    reduce_range: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recommend_int8(cpu: CpuInfo) -> Int8Recipe:
    """ONNX Runtime's recommended INT8 types for ``cpu`` (see the module docstring)."""
    if cpu.is_x86:
        if cpu.vnni or cpu.amx:
            return Int8Recipe("qint8", "quint8", False, f"{cpu.isa}: U8S8 without saturation, full range")
        return Int8Recipe("qint8", "quint8", True,
                          f"{cpu.isa} without VNNI: U8S8 kernels can saturate, so weights use 7 bits (reduce_range)")
    if cpu.is_arm:
        act = "qint8" if cpu.arm_dotprod else "quint8"
        return Int8Recipe("qint8", act, False, f"{cpu.isa}: S8 weights, full range")
    return Int8Recipe("qint8", "quint8", True, f"unknown CPU '{cpu.arch}': conservative U8S8 with reduce_range")
