"""Pack what experiments/gpu_bench.sh needs on the lent GPU machine into parts of at most 64 MiB per call.

That machine has no network, Python 3.12 with its own torch (CUDA 13) and transformers 5, and no onnxruntime-gpu;
one call carries at most 64 MiB of files. So, from a finished run (RUN_DIR) of a recipe (--config: its task, test and dev files, columns and max length):
  - the pinned pure-Python / cp312 wheels edgepress's bench needs there, and an edgepress wheel of this checkout
    (seqeval, which has no wheel, as the installed package's folder);
  - onnxruntime-gpu (CUDA 13 build) with every cubin that is not for SM 9.x zeroed in place: the H200 (SM 9.0)
    can only load the SM 9.x ones, which are kept byte for byte, and zeroed bytes compress to nothing
    (255 MB wheel -> 70 MB of xz);
  - the teacher and the winner's PyTorch folder with float16 weights (the torch CUDA runner casts to float16
    anyway, so its numbers are unchanged; halves the bytes), the winner's INT8 ONNX file, its float16 ONNX
    conversion (edgepress quantize, method fp16), and the SST-2 test file;
all in one xz stream (ORT and the ONNX files first, so a partial stream already holds them), split into
OUT/c1 (wheels + the first part), OUT/c2, ... Each part is carried (as .gpu1/, .gpu2/, ...) in one `device
run` call.

Usage: python experiments/gpu_payload.py RUN_DIR OUT --config configs/RECIPE.yaml [--repo-bytes N]
"""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from compress.config import RunConfig

LIMIT = 64 * 2**20
MARGIN = 400_000
PIP_PLATFORM = ["--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:", "--no-deps",
                "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
                "--platform", "manylinux2014_x86_64"]
WHEELS = ["transformers==4.57.6", "tokenizers==0.22.2", "huggingface-hub==0.36.2", "pydantic==2.14.4",
          "pydantic-core==2.50.5", "annotated-types==0.8.0", "typing-inspection==0.4.5", "datasets==5.0.1",
          "dill==0.4.1", "multiprocess==0.70.19", "optimum==2.1.0", "optimum-onnx==0.1.0", "fsspec==2026.6.0"]
ORT_GPU = "onnxruntime-gpu==1.31.1"
FATBIN_MAGIC = 0xBA55ED50


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True)


def fatbin_section(so: Path) -> tuple[int, int]:
    """File offset and size of the .nv_fatbin section (readelf)."""
    out = subprocess.run(["readelf", "-S", "-W", str(so)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if ".nv_fatbin" in line:
            fields = line.split("]", 1)[1].split()
            return int(fields[3], 16), int(fields[4], 16)
    raise SystemExit(f"{so}: no .nv_fatbin section")


def keep_only_sm(so: Path, major: int) -> tuple[int, int]:
    """Zero, in place, the data of every fatbin entry whose SM major is not ``major``; headers and sizes stay."""
    data = bytearray(so.read_bytes())
    pos, size = fatbin_section(so)
    end, kept, zeroed = pos + size, 0, 0
    while pos < end:
        magic, _version, header, body = struct.unpack_from("<IHHQ", data, pos)
        if magic != FATBIN_MAGIC:
            pos += 8  # fatbins are 8-byte aligned inside the section
            continue
        entry, stop = pos + header, pos + header + body
        while entry < stop:
            _kind, _flags, entry_header, entry_size = struct.unpack_from("<HHIQ", data, entry)
            arch = struct.unpack_from("<I", data, entry + 28)[0]
            start = entry + entry_header
            if arch // 10 == major:
                kept += entry_size
            else:
                data[start:start + entry_size] = bytes(entry_size)
                zeroed += entry_size
            entry = start + entry_size
        pos = stop
    so.write_bytes(bytes(data))
    return kept, zeroed


def half_folder(src: Path, dst: Path) -> None:
    """A save_pretrained (or sentence-transformers) folder with its float weights stored as float16."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.safetensors", "onnx"))
    tensors = load_file(src / "model.safetensors")
    save_file({k: v.half() if v.is_floating_point() else v for k, v in tensors.items()},
              dst / "model.safetensors", metadata={"format": "pt"})


def bench_args(cfg: "RunConfig", test_name: str) -> list[str]:
    """The data options of `edgepress bench run` that match the recipe's own bench stage."""
    d = cfg.data
    args = ["--task", cfg.task, "--data", f"/tmp/pl/data/{test_name}", "--max-length", str(cfg.teacher.max_length),
            "--max-samples", str(cfg.bench.max_eval_samples)]
    if cfg.task not in ("token-classification", "question-answering"):
        args += ["--text-column", d.text_column]
        if d.text_pair_column:
            args += ["--pair-column", d.text_pair_column]
        if d.label_column:
            args += ["--label-column", d.label_column]
    return args


def build(run_dir: Path, work: Path, config: Path, teacher: Path | None) -> None:
    from compress.config import load_config
    from compress.model.loading import resolve_model_path

    cfg = load_config(config)
    wheels = work / "whl"
    wheels.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip"]
    run(*pip, "download", "-q", *PIP_PLATFORM, "-d", str(wheels), *WHEELS)
    run(*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(Path(__file__).parents[1]))
    ort = work / "ort"
    run(*pip, "download", "-q", *PIP_PLATFORM, "-d", str(ort), ORT_GPU)
    site = work / "pl" / "site"
    site.mkdir(parents=True)
    (wheel,) = ort.glob("onnxruntime_gpu-*.whl")
    shutil.unpack_archive(wheel, site, format="zip")
    (site / "onnxruntime/capi/libonnxruntime_providers_tensorrt.so").unlink()
    import seqeval  # NER's metric is published as a source archive only: the installed pure-Python package travels

    shutil.copytree(Path(seqeval.__file__).parent, site / "seqeval", ignore=shutil.ignore_patterns("__pycache__"))
    kept, zeroed = keep_only_sm(site / "onnxruntime/capi/libonnxruntime_providers_cuda.so", 9)
    print(f"onnxruntime-gpu: kept {kept / 1e6:.1f} MB of SM 9.x cubins, zeroed {zeroed / 1e6:.1f} MB")
    models = work / "pl" / "models"
    finetuned = run_dir / "01-finetune/model"
    teacher = teacher or (finetuned if finetuned.is_dir() else Path(resolve_model_path(cfg.teacher.model)))
    half_folder(teacher, models / "teacher")
    half_folder(run_dir / "final/model", models / "student")
    onnx_dir = models / "onnx"
    shutil.copytree(run_dir / "final/onnx", onnx_dir, ignore=shutil.ignore_patterns("model.onnx"))
    run(sys.executable, "-m", "compress.cli.main", "quantize", str(run_dir / "final/onnx/model.onnx"), str(work / "fp16"),
        "--config", str(config), "--tokenizer", str(run_dir / "final/onnx"), "--data", str(cfg.data.eval),
        "--set", "quantize.methods=[fp16]")
    shutil.copy(work / "fp16/model.fp16.onnx", onnx_dir)
    test = Path(cfg.data.test)
    (work / "pl" / "data").mkdir()
    shutil.copy(test, work / "pl/data" / test.name)
    (work / "pl/bench.args").write_text(" ".join(bench_args(cfg, test.name)) + "\n")


def pack(work: Path, out: Path, repo_bytes: int) -> None:
    """One xz stream, ORT and ONNX files first; split so each call's carried bytes fit under the limit."""
    stream = work / "payload.tar.xz"
    pl = work / "pl"
    tar = subprocess.Popen(["tar", "-cf", "-", "-C", str(pl), "site", "data", "bench.args", "models/onnx", "models/teacher",
                            "models/student"], stdout=subprocess.PIPE)
    with stream.open("wb") as fh:
        subprocess.run(["xz", "-9e", "-T1"], stdin=tar.stdout, stdout=fh, check=True)
    tar.wait()
    blob = stream.read_bytes()
    wheels = sorted((work / "whl").glob("*.whl"))
    room = LIMIT - repo_bytes - MARGIN
    first = room - sum(w.stat().st_size for w in wheels)
    cuts = [0, first]
    while cuts[-1] < len(blob):
        cuts.append(cuts[-1] + room)
    for i in range(len(cuts) - 1):
        part = out / f"c{i + 1}"
        part.mkdir(parents=True)
        (part / f"payload.part{i + 1:02d}").write_bytes(blob[cuts[i]:cuts[i + 1]])
        if i == 0:
            (part / "whl").mkdir()
            for w in wheels:
                shutil.copy(w, part / "whl")
    print(f"{len(blob) / 1e6:.1f} MB of xz + {sum(w.stat().st_size for w in wheels) / 1e6:.1f} MB of wheels "
          f"in {len(cuts) - 1} calls under {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--config", type=Path, required=True, help="the recipe RUN_DIR was made with")
    parser.add_argument("--teacher", type=Path, help="teacher folder (default: RUN_DIR/01-finetune/model, else the "
                        "recipe's teacher.model)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/edgepress-gpu-payload"))
    parser.add_argument("--repo-bytes", type=int, default=2_000_000, help="bytes of the checkout that travel too")
    args = parser.parse_args()
    if args.work.exists() or args.out.exists():
        raise SystemExit(f"{args.work} or {args.out} exists: remove it first")
    build(args.run_dir, args.work, args.config, args.teacher)
    pack(args.work, args.out, args.repo_bytes)


if __name__ == "__main__":
    main()
