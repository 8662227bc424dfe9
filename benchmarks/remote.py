"""Remote devices: copy ``remote_runner.py`` and a model over SSH (asyncssh) or adb (adbutils), run it, read JSON.

The runner picks the runtime by the model's suffix: onnxruntime for ``.onnx``/``.ort``, LiteRT for ``.tflite``,
OpenVINO for an IR's ``.xml`` (uploaded with its ``.bin``).

Targets are written ``ssh://user@host[:port]`` or ``adb://serial``. SSH host keys are always verified
against a known_hosts file or a key given in the options; an unknown key is an error, never accepted.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from compress.core.errors import EdgepressError

RUNNER_FILE = Path(__file__).with_name("remote_runner.py")
REMOTE_FORMATS = ("onnx", "ort", "litert", "openvino")  # what remote_runner.py runs: onnxruntime, LiteRT, OpenVINO


class RemoteError(EdgepressError):
    """A remote target could not be reached, verified, or could not run the model."""


class RemoteModelError(RemoteError):
    """The target was reached but its runtime (onnxruntime, LiteRT, OpenVINO) cannot load the model file."""


@dataclass(frozen=True)
class Target:
    """A parsed target URL."""

    scheme: str  # ssh | adb
    host: str = ""
    port: int = 22
    user: str | None = None
    serial: str = ""

    def __str__(self) -> str:
        if self.scheme == "adb":
            return f"adb://{self.serial}"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port != 22 else ""
        return f"ssh://{user}{self.host}{port}"


def parse_target(text: str) -> Target:
    """``ssh://user@host[:port]`` or ``adb://serial`` -> Target (EdgepressError on anything else)."""
    parts = urlsplit(text)
    if parts.scheme == "ssh":
        try:
            port = parts.port or 22
        except ValueError:
            raise RemoteError(f"target '{text}': port is not a number") from None
        if not parts.hostname:
            raise RemoteError(f"target '{text}': no host; write ssh://user@host[:port]")
        return Target("ssh", host=parts.hostname, port=port, user=parts.username)
    if parts.scheme == "adb":
        serial = (parts.netloc + parts.path).strip("/")
        if not serial:
            raise RemoteError(f"target '{text}': no device serial; write adb://SERIAL (see `adb devices`)")
        return Target("adb", serial=serial)
    raise RemoteError(f"target '{text}': expected ssh://user@host[:port] or adb://serial")


@dataclass
class RemoteOptions:
    """How to reach and run on targets."""

    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    host_key: str | None = None  # a trusted public key line ("ssh-ed25519 AAAA..."), instead of known_hosts
    identity: str | None = None  # private key file for authentication (None: ssh agent / default keys)
    python: str = "python3"
    remote_dir: str = "/tmp/edgepress-bench"
    connect_timeout: float = 15.0
    command_timeout: float = 1800.0
    extra_args: list[str] = field(default_factory=list)


def runner_command(opts: RemoteOptions, remote_runner: str, remote_model: str, args: list[str]) -> str:
    """The shell command run on the device, every path and argument quoted."""
    return " ".join(shlex.quote(x) for x in [opts.python, remote_runner, "--model", remote_model, *args])


def runner_args(settings: Any, vocab: int, lengths: list[int] | None) -> list[str]:
    """remote_runner.py arguments equivalent to the local BenchSettings."""
    threads = settings.threads
    args = ["--batch", ",".join(map(str, settings.batch_sizes)), "--seq", ",".join(map(str, settings.seq_lens)),
            "--warmup", str(settings.warmup), "--min-runs", str(settings.min_runs),
            "--min-seconds", str(settings.min_seconds), "--threads", str(threads.intra_op or 0),
            "--inter-threads", str(threads.inter_op or 1), "--vocab", str(vocab), "--seed", str(settings.seed)]
    if lengths:
        args += ["--lengths", ",".join(map(str, lengths))]
    return args


# ------------------------------------------------------------------------------------------ SSH


def _known_hosts_arg(target: Target, opts: RemoteOptions) -> Any:
    import asyncssh

    if opts.host_key:
        try:
            key = asyncssh.import_public_key(opts.host_key.strip())
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise RemoteError(f"host key given for {target} is not an OpenSSH public key line: {exc}") from None
        return ([key], [], [])
    path = Path(opts.known_hosts).expanduser() if opts.known_hosts else Path("~/.ssh/known_hosts").expanduser()
    if not path.is_file():
        raise RemoteError(
            f"cannot verify the host key of {target}: known_hosts file '{path}' does not exist. Verify the device's "
            f"fingerprint, then add it (ssh-keyscan -p {target.port} {target.host} >> {path}) or give the key "
            f"with --host-key / bench.host_key")
    return str(path)


async def _ssh_session(target: Target, opts: RemoteOptions, uploads: list[tuple[Path, str]], command: str,
                       mkdir: str) -> tuple[int, str, str]:
    import asyncio

    import asyncssh

    kw: dict[str, Any] = {"known_hosts": _known_hosts_arg(target, opts), "port": target.port,
                          "connect_timeout": opts.connect_timeout}
    if target.user:
        kw["username"] = target.user
    if opts.identity:
        kw["client_keys"] = [str(Path(opts.identity).expanduser())]
    try:
        conn = await asyncssh.connect(target.host, **kw)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise RemoteError(
            f"host key of {target} does not match the trusted key ({exc.reason}); refusing to connect. If the device "
            f"was re-imaged, verify its new fingerprint and update known_hosts / bench.host_key") from None
    except asyncssh.PermissionDenied as exc:
        raise RemoteError(f"{target} refused authentication ({exc.reason}); pass --identity KEYFILE") from None
    except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
        why = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise RemoteError(f"cannot reach {target}: {why}. Check the host, port and that sshd runs there") from None
    async with conn:
        res = await conn.run(mkdir, check=False, timeout=opts.command_timeout)
        if res.exit_status != 0:
            raise RemoteError(f"{target}: cannot create {opts.remote_dir}: {str(res.stderr).strip()[:300]}")
        async with conn.start_sftp_client() as sftp:
            for local, remote in uploads:
                await sftp.put(str(local), remote)
        res = await conn.run(command, check=False, timeout=opts.command_timeout)
        return int(res.exit_status if res.exit_status is not None else 255), str(res.stdout), str(res.stderr)


def ssh_run(target: Target, opts: RemoteOptions, uploads: list[tuple[Path, str]], command: str) -> tuple[int, str, str]:
    """Upload files and run one command over SSH; returns (exit status, stdout, stderr)."""
    import asyncio

    from compress.core.errors import require

    require("asyncssh", "asyncssh", extra="remote")
    mkdir = "mkdir -p " + shlex.quote(opts.remote_dir)
    return asyncio.run(_ssh_session(target, opts, uploads, command, mkdir))


# ------------------------------------------------------------------------------------------ adb


def adb_run(target: Target, opts: RemoteOptions, uploads: list[tuple[Path, str]], command: str) -> tuple[int, str, str]:
    """Push files and run one command over adb (needs `pip install adbutils` and an adb server)."""
    from compress.core.errors import require

    adbutils = require("adbutils", "adbutils", extra="remote")
    try:
        dev = adbutils.adb.device(serial=target.serial)
        dev.shell("mkdir -p " + shlex.quote(opts.remote_dir))
        for local, remote in uploads:
            dev.sync.push(str(local), remote)
        out = dev.shell(command + '; echo "__edgepress_rc=$?"', timeout=opts.command_timeout)
    except (adbutils.AdbError, OSError) as exc:
        raise RemoteError(f"cannot reach {target}: {exc}. Check `adb devices` lists it") from None
    text = out if isinstance(out, str) else out.decode()
    body, _, rc = text.rpartition("__edgepress_rc=")
    try:
        return int(rc.strip()), body, ""
    except ValueError:
        return 255, text, ""


# ------------------------------------------------------------------------------------------ run


def runner_result(stdout: str) -> dict[str, Any] | None:
    """The runner's JSON object: the last line of its stdout that is one (None if there is none)."""
    last = next((ln for ln in reversed(stdout.strip().splitlines()) if ln.startswith("{")), "")
    try:
        return json.loads(last) if last else None
    except json.JSONDecodeError:
        return None


def _run_runner(target: Target, uploads: list[tuple[Path, str]], remote_args: list[str],
                opts: RemoteOptions) -> dict[str, Any]:
    """Upload the runner plus ``uploads``, run it with ``remote_args``; its JSON result (RemoteError on failure)."""
    remote_runner = f"{opts.remote_dir.rstrip('/')}/remote_runner.py"
    command = " ".join(shlex.quote(x) for x in [opts.python, remote_runner, *remote_args])
    transport = ssh_run if target.scheme == "ssh" else adb_run
    rc, out, err = transport(target, opts, [(RUNNER_FILE, remote_runner), *uploads], command)
    result = runner_result(out)
    if rc == 2 and result and result.get("kind") == "load":
        raise RemoteModelError(f"{target}: {result['error']}")
    if rc != 0 or result is None or "error" in result:
        detail = (result or {}).get("error") or (err.strip() or out.strip())[-500:] or f"exit status {rc}"
        raise RemoteError(f"{target}: remote runner failed (exit {rc}): {detail}")
    result["target"] = str(target)
    return result


def run_remote(target_text: str, model: Path, args: list[str], opts: RemoteOptions | None = None,
               feeds: dict[str, Any] | None = None) -> dict[str, Any]:
    """Copy the runner and ``model`` to the target, run it with ``args``, return its JSON result.

    ``feeds`` (input name -> numpy array): also run the model once on them there; the result then holds
    ``outputs`` (output name -> numpy array) decoded from the runner's base64 .npz.
    """
    opts = opts or RemoteOptions()
    target = parse_target(target_text)
    model = Path(model)
    if not model.is_file():
        raise RemoteError(f"model file '{model}' does not exist")
    from benchmarks.remote_runner import model_files

    remote_model = f"{opts.remote_dir.rstrip('/')}/{model.name}"
    uploads = []
    for part in map(Path, model_files(str(model))):  # an OpenVINO IR: the .xml and its .bin, side by side
        if not part.is_file():
            raise RemoteError(f"model file '{part}' does not exist (an OpenVINO IR needs its .bin beside the .xml)")
        uploads.append((part, f"{opts.remote_dir.rstrip('/')}/{part.name}"))
    extra: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edgepress-feeds-") as tmp:
        if feeds is not None:
            import numpy as np

            local_feeds = Path(tmp) / "feeds.npz"
            np.savez(local_feeds, **feeds)
            remote_feeds = f"{opts.remote_dir.rstrip('/')}/{model.stem}.feeds.npz"
            uploads.append((local_feeds, remote_feeds))
            extra = ["--feeds", remote_feeds]
        result = _run_runner(target, uploads, ["--model", remote_model, *args, *opts.extra_args, *extra], opts)
    if "outputs_npz_b64" in result:
        result["outputs"] = decode_outputs(result.pop("outputs_npz_b64"))
    return result


def decode_outputs(b64: str) -> dict[str, Any]:
    """The runner's base64 .npz of outputs -> output name -> numpy array."""
    import base64
    import io

    import numpy as np

    with np.load(io.BytesIO(base64.b64decode(b64))) as data:
        return {k: data[k] for k in data.files}


def probe_device(target_text: str, opts: RemoteOptions | None = None) -> dict[str, Any]:
    """What the target is (CPU, arch, ISA flags, versions, emulated or not): the runner's --device-info."""
    opts = opts or RemoteOptions()
    target = parse_target(target_text)
    info = _run_runner(target, [], ["--device-info"], opts)
    info.pop("target", None)
    return info


def compare_outputs(reference: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """How far ``other``'s outputs are from ``reference``'s: max |diff|, mean row cosine, argmax agreement."""
    import numpy as np

    per: dict[str, Any] = {}
    for name, ref in reference.items():
        if name not in other:
            raise RemoteError(f"output '{name}' is missing from the target's outputs ({sorted(other)})")
        a, b = np.asarray(ref, dtype=np.float64), np.asarray(other[name], dtype=np.float64)
        if a.shape != b.shape:
            raise RemoteError(f"output '{name}' has shape {list(b.shape)} on the target, {list(a.shape)} locally")
        ra, rb = a.reshape(-1, a.shape[-1]) if a.ndim else a.reshape(1, 1), b.reshape(-1, b.shape[-1]) if b.ndim else b.reshape(1, 1)
        norms = np.linalg.norm(ra, axis=1) * np.linalg.norm(rb, axis=1)
        cos = np.where(norms > 0, (ra * rb).sum(axis=1) / np.where(norms > 0, norms, 1.0), 1.0)
        per[name] = {"max_abs_diff": float(np.abs(a - b).max()) if a.size else 0.0,
                     "mean_cosine": float(cos.mean()), "argmax_agreement": float((ra.argmax(1) == rb.argmax(1)).mean())}
    return {"max_abs_diff": max((v["max_abs_diff"] for v in per.values()), default=0.0),
            "mean_cosine": min((v["mean_cosine"] for v in per.values()), default=1.0), "outputs": per}


def parity_feeds(model: Path, vocab: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fixed inputs (batch 2 x 16 tokens, the second row padded after 9) and this machine's outputs for them.

    The reference runs in the model's own runtime here: onnxruntime, or the LiteRT interpreter for a .tflite
    (through the same LiteRTSession, static length buckets and padding, as on the device), or OpenVINO for an
    IR through the device's OpenVinoSession in f32, as the device runs its --feeds: OpenVINO's default runs fp32
    IRs in bf16 on AMX / AVX512-BF16 CPUs and in f16 on ARM cores with FP16 arithmetic, rounding that would hide
    whether the two builds compute the same thing.
    """
    from benchmarks.remote_runner import LiteRTSession, OpenVinoSession, runtime_for, synthetic_feeds

    runtime = runtime_for(str(model))
    if runtime == "litert":
        sess: Any = LiteRTSession(str(model), 1)
    elif runtime == "openvino":
        sess = OpenVinoSession(str(model), 1, precision="f32")
    else:
        from benchmarks.sessions import open_session

        sess = open_session(model, 1, 1)
    names = [i.name for i in sess.get_inputs()]
    feeds = synthetic_feeds(names, 2, 16, vocab, seed=1, lengths=[16, 9])
    outs = sess.run(None, feeds)
    return feeds, dict(zip([o.name for o in sess.get_outputs()], outs))


def bench_remote(target: str, local_entry: dict[str, Any], settings: Any, vocab: int, lengths: list[int] | None,
                 opts: RemoteOptions | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A report entry for one model measured on ``target`` (ONNX/ORT in onnxruntime, .tflite in LiteRT, an IR in
    OpenVINO), plus the device record.

    The entry's ``parity`` compares the target's outputs on fixed inputs with this machine's run in the same runtime.
    """
    import platform

    entry = {**local_entry, "target": str(parse_target(target)), "points": [], "latency_ms": None, "throughput": None,
             "cold_start_ms": None, "peak_rss_mb": None, "rss_growth_mb": None, "runtime": None, "status": "ok",
             "reason": None, "parity": None}
    if local_entry["quality"]:
        entry["quality"] = {**local_entry["quality"], "measured_on": "local"}
    if local_entry["format"] not in REMOTE_FORMATS:
        entry.update(status="skipped", reason=f"remote targets run onnxruntime (.onnx, .ort), LiteRT (.tflite) and "
                                              f"OpenVINO (.xml) only; format '{local_entry['format']}'")
        return entry, {}
    model = Path(local_entry.get("file") or local_entry["path"])
    try:
        feeds, reference = parity_feeds(model, vocab)
    except Exception as exc:  # this machine's onnxruntime cannot run it: the target still measures latency
        feeds, reference = None, None
        entry["parity"] = {"error": f"no local reference: {type(exc).__name__}: {str(exc).strip()[:200]}"}
    try:
        res = run_remote(target, model, runner_args(settings, vocab, lengths), opts, feeds=feeds)
    except RemoteModelError as exc:  # unreachable / wrong host key stop the whole run instead
        entry.update(status="error", reason=str(exc))
        return entry, {}
    backend = res.get("runtime", "onnxruntime")
    version_key = {"litert": "ai_edge_litert", "openvino": "openvino"}.get(backend, "onnxruntime")
    entry.update(points=res["points"], latency_ms=res["latency_ms"], throughput=res["latency_ms"]["throughput"],
                 cold_start_ms=res["cold_start_ms"], peak_rss_mb=res["peak_rss_mb"],
                 runtime={"backend": backend, "device": "cpu", "threads": res["threads"],
                          version_key: res["device"]["versions"].get(version_key)})
    if "litert" in res:  # how the file's static shapes ran there (buckets, batch, cut feeds)
        entry["runtime"]["shapes"] = res["litert"]
    if "openvino" in res:  # the buckets compiled there and the hints the compiled model reports
        entry["runtime"]["shapes"] = res["openvino"]
    if reference is not None and "outputs" in res:
        entry["parity"] = {"reference": f"local {backend} ({platform.machine()})", "inputs": "batch 2 x 16 tokens",
                           **compare_outputs(reference, res["outputs"])}
    return entry, res["device"]
