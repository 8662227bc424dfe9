"""An emulated aarch64 device on an x86 Linux machine, served as an SSH target on 127.0.0.1 only.

    python -m tests.arm.emulated build                 # build (or reuse) the aarch64 Python; print where it is
    python -m tests.arm.emulated serve --dir DIR       # serve it over SSH until Ctrl-C; print target + options

The device is a Debian arm64 userland (``debootstrap --foreign`` from the mirror apt already uses; every
``.deb`` unpacked with ``dpkg-deb -x``, because the second debootstrap stage needs binfmt) plus aarch64
wheels of onnxruntime and numpy at this machine's versions, and of ai-edge-litert (the LiteRT interpreter) and
openvino (its ARM CPU plugin, ``manylinux_2_35_aarch64``) when this machine has them, run by ``qemu-aarch64-static -L ROOT``. Wheels are chosen for the device's glibc (bookworm:
2.36; ai-edge-litert publishes ``manylinux_2_27_aarch64`` only, which an explicit ``pip download --platform``
does not match from ``manylinux_2_28`` or ``manylinux2014`` alone, so every tag up to 2.36 is listed).
onnxruntime's CPU probe parses ``/proc/cpuinfo`` and crashes on the host's x86 text, so every run happens
in a private mount namespace (``unshare -m``) with an aarch64 (Neoverse-N1) cpuinfo bind-mounted over it,
and qemu emulates that same CPU (``-cpu neoverse-n1``). Under qemu's default ``max`` CPU the auxiliary vector
advertises SVE/i8mm, onnxruntime picks those kernels, and qemu 7.2 then ran the default run's INT8 student
with outputs unrelated to x86's (cosine 0.05) and fp32 ~35x slower; with the N1 model both match x86 to 1e-6.

The build is cached under ``~/.cache/edgepress/aarch64-<key>``; the key hashes the Debian suite, the wheel
versions and ``SCRIPT_VERSION``. The server is an asyncssh server bound to 127.0.0.1: a host key and a
client key generated per run, public-key auth only, SFTP/SCP for uploads, and sessions run under the host
shell with ``python3`` on PATH being the emulated aarch64 Python. The runner learns it is emulated from
``EDGEPRESS_EMULATED`` in its environment (set by qemu's ``-E``), so reports can say so.

Emulated milliseconds are not device timings (qemu is ~300x slower than the native CPU); ratios between
variants measured on the emulated device are the signal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from compress.core.errors import EdgepressError

SCRIPT_VERSION = 4  # bump when the build recipe below changes: a new cache key rebuilds
SUITE = "bookworm"
PYTHON_VERSION = "3.11"  # bookworm's python3
DEBIAN_PACKAGES = ("python3", "libpython3.11")
DEVICE_WHEELS = ("onnxruntime", "numpy")  # at the host's versions, so outputs compare like for like
OPTIONAL_WHEELS = ("ai-edge-litert", "openvino")  # on the device (at the host's version) when this machine has it
DEVICE_GLIBC = (2, 36)  # bookworm's: pip download matches each --platform literally, so list every manylinux tag
WHEEL_PLATFORMS = tuple(f"manylinux_2_{m}_aarch64" for m in range(DEVICE_GLIBC[1], 16, -1)) + ("manylinux2014_aarch64",)
QEMU_CPU = "neoverse-n1"  # the CPU the cpuinfo below describes: features and HWCAPs agree
LOOPBACK = "127.0.0.1"
EMULATED_ENV = "EDGEPRESS_EMULATED"
USER = "edgepress"
REQUIRED_TOOLS = {"qemu-aarch64-static": "qemu-user-static", "debootstrap": "debootstrap", "dpkg-deb": "dpkg",
                  "unshare": "util-linux", "mount": "mount"}

# What a Neoverse-N1 (AWS Graviton2, Ampere Altra) kernel prints, one block per core.
CPUINFO_BLOCK = """processor\t: {n}
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
"""


class EmulatorUnavailable(EdgepressError):
    """The emulated device cannot be built or run here (no apt tools, no root, no mirror): the reason says which."""


def _log(progress: Callable[[str], None] | None, msg: str) -> None:
    if progress:
        progress(msg)


def missing_tool() -> str | None:
    """One-line reason the emulated device cannot be built here, or None when every tool is present."""
    if sys.platform != "linux":
        return f"the emulated aarch64 device needs Linux (this is {sys.platform})"
    for tool, package in REQUIRED_TOOLS.items():
        if shutil.which(tool) is None:
            return f"{tool} not found: apt-get install -y qemu-user-static debootstrap (package {package})"
    if os.geteuid() != 0:
        return "the emulated aarch64 device needs root (debootstrap, and unshare -m to bind-mount /proc/cpuinfo)"
    return None


def apt_sources(etc: Path = Path("/etc/apt")) -> list[tuple[str, list[str]]]:
    """(URI, suites) of every enabled ``deb`` source in sources.list, sources.list.d/*.list and *.sources."""
    out: list[tuple[str, list[str]]] = []
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for f in files:
        if not f.is_file():
            continue
        for line in f.read_text(errors="replace").splitlines():
            line = line.split("#", 1)[0].strip()
            if "[" in line and "]" in line:  # deb [arch=amd64 signed-by=...] URI suite components
                line = line[:line.index("[")] + line[line.index("]") + 1:]
            words = line.split()
            if len(words) >= 3 and words[0] == "deb":
                out.append((words[1], [words[2]]))
    for f in sorted((etc / "sources.list.d").glob("*.sources")):
        for stanza in f.read_text(errors="replace").split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes").lower() != "no":
                for uri in fields.get("uris", "").split():
                    out.append((uri, fields.get("suites", "").split()))
    return out


def debian_mirror(suite: str = SUITE, etc: Path = Path("/etc/apt")) -> str:
    """The Debian mirror apt already uses for ``suite`` (read from the apt sources at run time)."""
    for uri, suites in apt_sources(etc):
        if suite in suites and uri.startswith(("http://", "https://")) and "security" not in uri:
            return uri.rstrip("/")
    raise EmulatorUnavailable(f"no Debian '{suite}' mirror in {etc}/sources.list(.d): the emulated aarch64 device "
                              f"downloads its userland from the mirror apt uses")


def wheel_versions() -> dict[str, str]:
    """The host's versions of the device wheels (the device runs the same onnxruntime, numpy and, when this machine
    has them, ai-edge-litert and openvino)."""
    out = {}
    for name in DEVICE_WHEELS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise EmulatorUnavailable(f"{name} is not installed on this machine; pip install {name}") from None
    for name in OPTIONAL_WHEELS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def cache_key(suite: str = SUITE, wheels: dict[str, str] | None = None) -> str:
    """12 hex digits over what the build depends on: suite, packages, wheel versions, this script's version."""
    data = {"suite": suite, "packages": list(DEBIAN_PACKAGES), "wheels": wheels or wheel_versions(),
            "platforms": list(WHEEL_PLATFORMS), "python": PYTHON_VERSION, "script": SCRIPT_VERSION}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def cache_root() -> Path:
    """~/.cache/edgepress (XDG_CACHE_HOME respected)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "edgepress"


@dataclass(frozen=True)
class EmulatedPython:
    """A built emulated aarch64 Python: ``python`` is a host executable that runs it (the device's python3)."""

    dir: Path

    @property
    def root(self) -> Path:
        return self.dir / "rootfs"

    @property
    def site(self) -> Path:
        return self.dir / "site-packages"

    @property
    def cpuinfo(self) -> Path:
        return self.dir / "cpuinfo"

    @property
    def bin(self) -> Path:
        return self.dir / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python3"

    @property
    def info(self) -> dict[str, Any]:
        """What the build recorded: versions, machine, emulator, build seconds."""
        return json.loads((self.dir / "device.json").read_text())

    def run(self, args: list[str], timeout: float = 600.0, **kw: Any) -> subprocess.CompletedProcess:
        """Run the emulated python with ``args`` (text mode, output captured)."""
        return subprocess.run([str(self.python), *args], capture_output=True, text=True, timeout=timeout, **kw)


def emulator_version() -> str:
    out = subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True, text=True, timeout=30)
    first = (out.stdout.strip().splitlines() or ["qemu-aarch64-static"])[0]
    return first.replace("qemu-aarch64 version", "qemu-aarch64-static").strip()


def _wrapper(d: Path, emulator: str) -> str:
    """The device's python3: a private mount namespace, aarch64 cpuinfo over /proc/cpuinfo, then qemu."""
    q = shlex.quote
    root, site, cpuinfo = d / "rootfs", d / "site-packages", d / "cpuinfo"
    return ("#!/bin/sh\n# python3 of the emulated aarch64 device (written by tests/arm/emulated.py)\n"
            "exec unshare -m sh -c 'mount --bind \"$1\" /proc/cpuinfo && shift && exec \"$@\"' sh "
            f"{q(str(cpuinfo))} qemu-aarch64-static -cpu {QEMU_CPU} -L {q(str(root))} -E PYTHONPATH={q(str(site))} "
            f"-E PYTHONNOUSERSITE=1 -E {EMULATED_ENV}={q(emulator)} {q(str(root / 'usr/bin' / ('python' + PYTHON_VERSION)))}"
            ' "$@"\n')


def _check(cmd: list[str], what: str, timeout: float, **kw: Any) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise EmulatorUnavailable(f"{what} took over {timeout:.0f} s: {' '.join(cmd[:4])} …") from None
    if res.returncode != 0:
        tail = (res.stderr.strip() or res.stdout.strip()).splitlines()[-1:] or [f"exit {res.returncode}"]
        raise EmulatorUnavailable(f"{what} failed (exit {res.returncode}): {tail[0][:300]}")
    return res.stdout


SMOKE = ("import json, os, platform, numpy, onnxruntime; "
         "info = {'machine': platform.machine(), 'python': platform.python_version(), "
         "'onnxruntime': onnxruntime.__version__, 'numpy': numpy.__version__, "
         "'providers': onnxruntime.get_available_providers(), 'emulated': os.environ.get('" + EMULATED_ENV + "')}\n"
         "if os.environ.get('EDGEPRESS_SMOKE_LITERT'):\n"
         "    import ai_edge_litert, ai_edge_litert.interpreter\n"
         "    info['ai_edge_litert'] = ai_edge_litert.__version__\n"
         "if os.environ.get('EDGEPRESS_SMOKE_OPENVINO'):\n"
         "    import openvino\n"
         "    info['openvino'] = openvino.__version__\n"
         "    info['openvino_devices'] = openvino.Core().available_devices\n"
         "print(json.dumps(info))")


def _build_into(d: Path, suite: str, wheels: dict[str, str], progress: Callable[[str], None] | None) -> None:
    t0 = time.perf_counter()
    mirror = debian_mirror(suite)
    root = d / "rootfs"
    _log(progress, f"debootstrap --foreign arm64 {suite} minbase from {mirror}")
    _check(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase", "--include=" + ",".join(DEBIAN_PACKAGES),
            suite, str(root), mirror], f"debootstrap of Debian {suite} arm64 from {mirror}", 900)
    debs = sorted((root / "var/cache/apt/archives").glob("*.deb"))
    if not debs:
        raise EmulatorUnavailable(f"debootstrap left no .deb files in {root}/var/cache/apt/archives")
    _log(progress, f"unpacking {len(debs)} .deb files (dpkg-deb -x)")
    for deb in debs:
        _check(["dpkg-deb", "-x", str(deb), str(root)], f"dpkg-deb -x {deb.name}", 300)
        deb.unlink()
    if not (root / "usr/bin" / f"python{PYTHON_VERSION}").is_file():
        raise EmulatorUnavailable(f"the {suite} arm64 userland has no usr/bin/python{PYTHON_VERSION}")

    _log(progress, "pip download aarch64 wheels: " + ", ".join(f"{k}=={v}" for k, v in wheels.items()))
    wheel_dir = d / "wheels"
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", PYTHON_VERSION,
           "--implementation", "cp", "--dest", str(wheel_dir)]
    for plat in WHEEL_PLATFORMS:
        cmd += ["--platform", plat]
    _check(cmd + [f"{k}=={v}" for k, v in wheels.items()], "pip download of the aarch64 wheels", 600)
    site = d / "site-packages"
    site.mkdir()
    wheel_files = sorted(w.name for w in wheel_dir.glob("*.whl"))
    for whl in sorted(wheel_dir.glob("*.whl")):
        with zipfile.ZipFile(whl) as z:
            z.extractall(site)
    shutil.rmtree(wheel_dir)
    for so in site.rglob("*.so*"):  # zipfile drops the exec bits the loader does not need, but keep them tidy
        so.chmod(0o755)

    # Debian's postinst would byte-compile the stdlib; without it every emulated start compiles it again
    # (import onnxruntime: ~19 s -> ~8 s). Same magic number when the host runs the same Python minor.
    _log(progress, "byte-compiling the stdlib and site-packages")
    same_minor = f"{sys.version_info[0]}.{sys.version_info[1]}" == PYTHON_VERSION
    compiler = [sys.executable] if same_minor else None
    cores = os.cpu_count() or 1
    (d / "cpuinfo").write_text("\n".join(CPUINFO_BLOCK.format(n=n) for n in range(cores)))
    emulator = emulator_version()
    (d / "bin").mkdir()
    py = d / "bin" / "python3"
    py.write_text(_wrapper(d, emulator))
    py.chmod(0o755)
    compiler = compiler or [str(py)]
    subprocess.run([*compiler, "-m", "compileall", "-q", "-j", str(cores), str(root / "usr/lib" / f"python{PYTHON_VERSION}"),
                    str(site)], capture_output=True, timeout=900)  # a few test files do not compile: not an error
    litert, openvino = "ai-edge-litert" in wheels, "openvino" in wheels
    modules = ", ".join(["onnxruntime", "numpy"] + ["ai_edge_litert"] * litert + ["openvino"] * openvino)
    _log(progress, f"checking: import {modules} under qemu-aarch64")
    out = _check([str(py), "-c", SMOKE], f"the emulated aarch64 python (import {modules})", 600,
                 env={**os.environ, "EDGEPRESS_SMOKE_LITERT": "1" if litert else "",
                      "EDGEPRESS_SMOKE_OPENVINO": "1" if openvino else ""})
    info = json.loads(out.strip().splitlines()[-1])
    if info["machine"] != "aarch64":
        raise EmulatorUnavailable(f"the emulated python reports machine '{info['machine']}', not aarch64")
    if openvino and "CPU" not in info["openvino_devices"]:  # the ARM CPU plugin did not load under qemu
        raise EmulatorUnavailable(f"openvino on the emulated device lists no CPU device ({info['openvino_devices']})")
    info.update(suite=suite, mirror=mirror, emulator=emulator, cache_key=d.name.split("-", 1)[-1].split(".")[0],
                script_version=SCRIPT_VERSION, wheels=wheel_files, build_seconds=round(time.perf_counter() - t0, 1))
    (d / "device.json").write_text(json.dumps(info, indent=2) + "\n")


def build(cache_dir: Path | None = None, suite: str = SUITE,
          progress: Callable[[str], None] | None = None) -> EmulatedPython:
    """Build the emulated aarch64 Python, or reuse the cached one with the same key; EmulatorUnavailable if it cannot."""
    why = missing_tool()
    if why:
        raise EmulatorUnavailable(why)
    wheels = wheel_versions()
    parent = Path(cache_dir) if cache_dir else cache_root()
    final = parent / f"aarch64-{cache_key(suite, wheels)}"
    if (final / "device.json").is_file():
        return EmulatedPython(final)
    parent.mkdir(parents=True, exist_ok=True)
    with open(parent / f"{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; a second caller reuses the first's result
        if (final / "device.json").is_file():
            return EmulatedPython(final)
        tmp = parent / f"{final.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            _build_into(tmp, suite, wheels, progress)
            final_py = EmulatedPython(final)
            # the wrapper names its own folder: rewrite it for the final location, then move into place
            (tmp / "bin" / "python3").write_text(_wrapper(final, json.loads((tmp / "device.json").read_text())["emulator"]))
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final_py


# ------------------------------------------------------------------------------------------ SSH server


class EmulatedDevice:
    """The emulated Python served as ``ssh://edgepress@127.0.0.1:PORT``; start() / stop(), or use as a context manager.

    ``workdir`` receives the per-run client key (``id_ed25519``), ``known_hosts`` and the device's home folder.
    """

    def __init__(self, py: EmulatedPython, workdir: Path, port: int = 0) -> None:
        self.py = py
        self.workdir = Path(workdir)
        self.requested_port = port
        self.port = 0
        self.commands: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: Any = None

    # keys and files a client needs
    @property
    def target(self) -> str:
        return f"ssh://{USER}@{LOOPBACK}:{self.port}"

    @property
    def identity(self) -> Path:
        return self.workdir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.workdir / "known_hosts"

    @property
    def home(self) -> Path:
        return self.workdir / "home"

    @property
    def listening(self) -> list[tuple[str, int]]:
        """(address, port) of every socket the server listens on."""
        return [s.getsockname()[:2] for s in self._acceptor.sockets] if self._acceptor else []

    def options(self, **kw: Any) -> Any:
        """RemoteOptions that reach this device (host key verified against the per-run known_hosts)."""
        from benchmarks.remote import RemoteOptions

        base: dict[str, Any] = dict(known_hosts=str(self.known_hosts), identity=str(self.identity), python="python3",
                                    remote_dir=str(self.home / "edgepress-bench"), connect_timeout=30.0)
        base.update(kw)
        return RemoteOptions(**base)

    def env(self) -> dict[str, str]:
        """The environment of a session's command: the emulated python3 first on PATH."""
        keep = {k: os.environ[k] for k in ("LANG", "LC_ALL", "TZ") if k in os.environ}
        return {**keep, "PATH": f"{self.py.bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME": str(self.home), "USER": USER, "LOGNAME": USER, "SHELL": "/bin/sh"}

    async def _handle(self, process: Any) -> None:
        command = process.command
        if not command:
            process.stderr.write("this emulated device runs commands only (ssh ... 'python3 -c ...')\n")
            process.exit(1)
            return
        self.commands.append(command)
        proc = await asyncio.create_subprocess_shell(command, stdin=asyncio.subprocess.DEVNULL,
                                                     stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                     env=self.env(), cwd=str(self.home), start_new_session=True)
        try:
            out, err = await proc.communicate()
        except asyncio.CancelledError:  # the client went away: do not leave an emulated process behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            raise
        process.stdout.write(out.decode(errors="replace"))
        process.stderr.write(err.decode(errors="replace"))
        process.exit(proc.returncode if proc.returncode is not None and proc.returncode >= 0 else 255)

    async def _listen(self, host_key: Any, client_key: Any) -> Any:
        import asyncssh

        authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
        return await asyncssh.listen(LOOPBACK, self.requested_port, server_host_keys=[host_key],
                                     authorized_client_keys=authorized, process_factory=self._handle,
                                     sftp_factory=True, allow_scp=True, password_auth=False,
                                     kbdint_auth=False)

    def start(self) -> "EmulatedDevice":
        from compress.core.errors import require

        asyncssh = require("asyncssh", "asyncssh", extra="remote")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(exist_ok=True)
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        if self.identity.exists():
            self.identity.unlink()
        client_key.write_private_key(str(self.identity))
        self.identity.chmod(0o600)
        self.host_key_line = host_key.export_public_key().decode().strip()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="emulated-sshd", daemon=True)
        self._thread.start()
        self._acceptor = asyncio.run_coroutine_threadsafe(self._listen(host_key, client_key), self._loop).result(30)
        self.port = self._acceptor.get_port()
        bad = [a for a, _ in self.listening if a != LOOPBACK]
        if bad:  # cannot happen with a literal loopback address, but never serve beyond it
            self.stop()
            raise EdgepressError(f"emulated device listened on {bad}; refusing to serve beyond {LOOPBACK}")
        self.known_hosts.write_text(f"[{LOOPBACK}]:{self.port} {self.host_key_line}\n")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._acceptor is not None:
            self._acceptor.close()
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._acceptor.wait_closed(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = self._acceptor = None

    def __enter__(self) -> "EmulatedDevice":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.arm.emulated", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build (or reuse) the emulated aarch64 python; print its folder and versions")
    b.add_argument("--cache-dir", type=Path, default=None, help="default ~/.cache/edgepress")
    s = sub.add_parser("serve", help="serve the emulated device on 127.0.0.1 over SSH until Ctrl-C")
    s.add_argument("--cache-dir", type=Path, default=None, help="default ~/.cache/edgepress")
    s.add_argument("--dir", type=Path, required=True, help="folder for this run's client key, known_hosts and home")
    s.add_argument("--port", type=int, default=0, help="loopback port (0: any free one)")
    args = p.parse_args(argv)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        py = build(args.cache_dir, progress=say)
    except EmulatorUnavailable as exc:
        say(f"error: {exc}")
        return 1
    info = py.info
    if args.cmd == "build":
        print(json.dumps({"dir": str(py.dir), "executable": str(py.python), **info}, indent=2))
        return 0
    with EmulatedDevice(py, args.dir, args.port) as dev:
        print(f"emulated aarch64 device ({info['emulator']}, onnxruntime {info['onnxruntime']}) at {dev.target}")
        print(f"  edgepress bench run MODEL.onnx --target {dev.target} --known-hosts {dev.known_hosts} "
              f"--identity {dev.identity} --remote-dir {dev.home / 'edgepress-bench'}")
        print("  latency there is emulated (qemu): compare variants by their ratios on this device only. Ctrl-C stops.",
              flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
