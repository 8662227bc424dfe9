"""Isolated virtualenvs for converters that cannot share the core environment (LiteRT's ``litert-torch``).

``litert-torch`` pins typing-extensions < 4.13 (through xdsl) while the core's pydantic needs >= 4.16, so it runs
in its own virtualenv: created once per machine (under a lock, built in a temp folder and renamed into place), keyed
by the converter's package specs and the core's torch version (the env's torch is pinned to it, so a file saved by
``torch.export`` here loads there), and reused by every later export. Scripts run in it as a subprocess.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from export.errors import FormatUnavailableError

READY = ".edgepress-ready"  # written last into a finished env: a folder without it is never used


@dataclass(frozen=True)
class ConverterSpec:
    """A converter's environment: its short name (folder prefix), pip requirement specs, what to call it in the
    progress line, and the install time to announce."""

    name: str
    packages: tuple[str, ...]
    label: str
    install_time: str = "~1 min"


LITERT = ConverterSpec("litert", ("litert-torch==0.10.0",), "the LiteRT converter (litert-torch)", "~40 s")


class ConverterEnvError(FormatUnavailableError):
    """The converter's environment could not be created, or a script in it failed."""


def cache_root() -> Path:
    """Where converter envs live: ``$XDG_CACHE_HOME/edgepress/envs`` (``~/.cache/edgepress/envs`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgepress" / "envs"


def core_torch_version() -> str:
    """The core environment's torch version (``2.13.0+cpu``), the version the converter env is pinned to."""
    import torch

    return str(torch.__version__)


def env_key(spec: ConverterSpec, torch_version: str) -> str:
    """A short stable key for (converter packages, torch version, Python version): one env per combination."""
    text = "\n".join([*spec.packages, f"torch=={torch_version}", f"python{sys.version_info[0]}.{sys.version_info[1]}"])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def env_python(env: Path) -> Path:
    """The interpreter of a virtualenv folder."""
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` for the block (other processes creating the same env wait)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pip_failure(output: str) -> str:
    """The line of pip's output that says why it failed (its first ERROR line, else its last line)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return (errors[0] if errors else lines[-1] if lines else "no output")[:300]


INSTALL_TIMEOUT_S = 1800  # pip's install of the converter (~2 GB); a hung index must not hang the export


def _build(spec: ConverterSpec, target: Path, torch_version: str) -> None:
    """Create the virtualenv in ``target`` (a fresh folder) and pip-install the converter with torch pinned."""
    made = subprocess.run([sys.executable, "-m", "venv", str(target)], capture_output=True, text=True)
    if made.returncode != 0:
        raise ConverterEnvError(f"cannot create a virtualenv for {spec.label} with {sys.executable} -m venv: "
                                f"{_pip_failure(made.stderr + made.stdout)}")
    constraints = target / "constraints.txt"
    # pin torch to the core's release (its public part: a local tag such as +cpu comes from pip's own config)
    constraints.write_text(f"torch=={torch_version.split('+')[0]}\n")
    cmd = [str(env_python(target)), "-m", "pip", "install", "--disable-pip-version-check", "-q",
           "-c", str(constraints), *spec.packages]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ConverterEnvError(f"installing {spec.label} into its own environment did not finish within "
                                f"{INSTALL_TIMEOUT_S} s (a slow or unreachable package index?)") from None
    if done.returncode != 0:
        raise ConverterEnvError(f"cannot install {spec.label} into its own environment ({' '.join(spec.packages)}): "
                                f"pip says: {_pip_failure(done.stderr + done.stdout)}")


def ensure_env(spec: ConverterSpec = LITERT, root: Path | None = None, torch_version: str | None = None) -> Path:
    """The converter's virtualenv folder, created on first use (under a lock; built in a temp folder, then renamed)
    and reused afterwards. Raises ConverterEnvError naming pip's failure when it cannot be created."""
    from compress.core.console import note

    root = Path(root) if root is not None else cache_root()
    torch_version = torch_version or core_torch_version()
    env = root / f"{spec.name}-{env_key(spec, torch_version)}"
    if (env / READY).is_file():
        return env
    try:
        with _locked(root / f".{env.name}.lock"):
            if (env / READY).is_file():  # another process built it while this one waited
                return env
            if env.exists():  # left half-made by an interrupted build from before the temp-folder step
                shutil.rmtree(env)
            note(f"installing {spec.label} into {env} (once, {spec.install_time})")
            tmp = Path(tempfile.mkdtemp(prefix=f".{env.name}-", dir=root))
            try:
                _build(spec, tmp, torch_version)
                (tmp / READY).write_text(f"{' '.join(spec.packages)}\ntorch=={torch_version}\n")
                tmp.rename(env)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise ConverterEnvError(f"cannot create the environment for {spec.label} under '{root}': {exc}") from None
    return env


def run_script(env: Path, script: Path, args: Sequence[str], what: str, timeout: float | None = None) -> str:
    """Run ``script`` with ``args`` in the env's Python (no shell) and return its stdout; a failure raises
    ConverterEnvError with ``what`` and the script's last error line."""
    cmd = [str(env_python(env)), str(script), *map(str, args)]
    child_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env)
    except subprocess.TimeoutExpired:
        raise ConverterEnvError(f"{what} did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")
        raise ConverterEnvError(f"{what} failed in '{env}' (exit {done.returncode}): {last.strip()[:400]}")
    return done.stdout
