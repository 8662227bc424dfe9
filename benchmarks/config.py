"""Config of the benchmark stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from compress.core.config_base import Section


class BenchConfig(Section):
    """What to measure and how long."""

    batch_size: int = Field(1, ge=1, description="batch size of the headline latency (the first point measured)")
    warmup: int = Field(10, ge=0, description="untimed runs before measuring")
    min_runs: int = Field(50, ge=1, description="timed runs per point: at least this many ...")
    min_seconds: float = Field(2.0, ge=0, description="... and at least this many seconds")
    rounds: int = Field(5, ge=1, description="time each point in this many blocks (each 1/rounds of the runs and "
                                             "seconds, warm-up repeated), alternating between the models, so drift "
                                             "in the machine's speed hits every model alike; 1 = one model after "
                                             "another")
    threads: int | None = Field(None, ge=1, description="intra-op threads on torch and ORT alike (unset: every core this process may use)")
    max_eval_samples: int = Field(500, ge=2, description="eval rows used for quality")
    inter_threads: int = Field(1, ge=1, description="inter-op threads (set explicitly on ORT and torch)")
    realistic: bool = Field(True, description="draw sequence lengths from the eval texts (dynamic padding)")
    seq_lens: list[int] = Field(default_factory=lambda: [128], min_length=1, description="fixed lengths when realistic is false")
    sweep_batch_sizes: list[int] = Field(default_factory=list, description="extra batch sizes to sweep")
    session_memory: bool = Field(True, description="measure each model file's peak session memory (every runtime) in a fresh process "
                                                   "per batch size (its own load and that size's batches; a few seconds each)")
    device: Literal["cpu", "cuda", "tensorrt"] = Field(
        "cpu", description="where local runners run: cpu, cuda (ORT CUDA EP, PyTorch fp16) or tensorrt (ORT TensorRT EP)")
    targets: list[str] = Field(default_factory=list, description="remote devices: ssh://user@host[:port] or adb://serial")
    known_hosts: str | None = Field(None, description="known_hosts file for ssh targets (unset: ~/.ssh/known_hosts)")
    host_key: str | None = Field(None, description="trusted host public key line for ssh targets")
    ssh_identity: str | None = Field(None, description="private key file for ssh targets")
    remote_python: str = Field("python3", description="python on the target (needs onnxruntime and numpy)")
    remote_dir: str = Field("/tmp/edgepress-bench", description="working folder on the target")
    baselines: list[Literal["optimum-onnx", "optimum-onnx-fused", "optimum-int8-dynamic", "optimum-int8-static"]] = Field(
        default_factory=list, description="also build and measure what Optimum alone gives for the teacher: "
                                          "optimum-onnx (exported fp32), optimum-onnx-fused (+ optimum-cli onnxruntime "
                                          "optimize -O2), optimum-int8-dynamic (+ optimum-cli onnxruntime quantize), "
                                          "optimum-int8-static (ORTQuantizer.fit on 100 training rows + quantize; "
                                          "sentence tasks)")

    @field_validator("seq_lens", "sweep_batch_sizes")
    @classmethod
    def _positive(cls, values: list[int]) -> list[int]:
        if any(v < 1 for v in values):
            raise ValueError(f"every entry must be >= 1 (got {values})")
        return values

    @field_validator("targets")
    @classmethod
    def _targets(cls, values: list[str]) -> list[str]:
        for v in values:
            if not v.startswith(("ssh://", "adb://")):
                raise ValueError(f"target '{v}' must be ssh://user@host[:port] or adb://serial")
        return values
