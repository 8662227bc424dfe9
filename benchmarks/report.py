"""Writing and comparing reports: report.json (schema in report.schema.json), report.md, report.csv, Pareto PNG."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from compress.core.errors import EdgepressError

SCHEMA_FILE = Path(__file__).with_name("report.schema.json")
COLUMNS = ["device", "variant", "label", "sha256", "role", "format", "precision", "size_mb", "metric", "value", "retention",
           "p50_ms", "p90_ms", "p99_ms", "throughput", "e2e_p50_ms", "cold_start_ms", "peak_rss_mb", "session_mb", "status",
           "reason"]


def load_schema() -> dict[str, Any]:
    """The JSON schema of report.json; its task enum (the shipped tasks) is checked as the registry is now, so a
    task registered later is valid too."""
    from compress.tasks import TASKS

    schema = json.loads(SCHEMA_FILE.read_text())
    schema["properties"]["task"] = {"enum": list(TASKS)}
    return schema


def validate_report(report: dict[str, Any]) -> None:
    """Raise EdgepressError naming the first place the report breaks its schema (needs jsonschema)."""
    from compress.core.errors import require

    jsonschema = require("jsonschema", "jsonschema", extra="test")
    try:
        jsonschema.validate(report, load_schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise EdgepressError(f"report does not match report.schema.json at {where}: {exc.message}") from None


def is_emulated(report: dict[str, Any], target: str) -> bool:
    """Whether ``target`` ran under an emulator (its device record says ``emulated: true``): its ms are not device time."""
    return bool((report.get("devices", {}).get(target) or {}).get("emulated"))


def _device_label(report: dict[str, Any], target: str) -> str:
    dev = report.get("devices", {}).get(target) or {}
    cpu = dev.get("cpu", "")
    gpu = (dev.get("gpu") or {}).get("name") if isinstance(dev.get("gpu"), dict) else None
    what = gpu if gpu and any(e["target"] == target and e["device"] != "cpu" for e in report["models"]) else cpu
    if is_emulated(report, target):
        what = f"{what}, emulated" if what else "emulated"
    return f"{target} ({what})" if what else target


def rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per (model, target) for the table and the CSV."""
    out = []
    for e in report["models"]:
        lat = e.get("latency_ms") or {}
        q = e.get("quality") or {}
        device = _device_label(report, e["target"])
        if e.get("device", "cpu") != "cpu":
            device += f" [{e['device']}]"
        out.append({"device": device, "variant": e["name"], "label": e.get("label"), "sha256": e.get("sha256"),
                    "role": e["role"], "format": e["format"],
                    "precision": e.get("precision"), "size_mb": e.get("size_mb"), "metric": q.get("metric"),
                    "value": q.get("value"), "retention": e.get("retention"), "p50_ms": lat.get("p50"),
                    "p90_ms": lat.get("p90"), "p99_ms": lat.get("p99"), "throughput": e.get("throughput"),
                    "e2e_p50_ms": ((e.get("end_to_end") or {}).get("latency_ms") or {}).get("p50"),
                    "cold_start_ms": e.get("cold_start_ms"), "peak_rss_mb": e.get("peak_rss_mb"),
                    "session_mb": _session_mb(e), "status": e["status"], "reason": e.get("reason")})
    return out


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: settings, devices, one table of variant × format × size × metric × retention × latency."""
    s = report["settings"]
    lines = [f"# Benchmark report — task `{report['task']}`", "",
             f"Created {report['created']} by {report['tool']}. "
             f"Teacher: `{report.get('teacher_model') or report.get('teacher') or 'none'}`."]
    if report.get("data"):
        d = report["data"]
        lines.append(f"Quality on `{d['source']}` ({d['rows']} rows, {d['kind']}: metric `{d['metric']}`); "
                     f"retention = variant metric / teacher metric on the same rows.")
    if report.get("id2label"):
        lines.append("Labels: " + ", ".join(f"{k} = {v}" for k, v in report["id2label"].items()) + ".")
    shape = "realistic (lengths drawn from the eval texts, dynamic padding)" if s["realistic"] else \
        f"seq {', '.join(map(str, s['seq_lens']))}"
    lines.append(f"Latency: batch {', '.join(map(str, s['batch_sizes']))}, {shape}; {s['warmup']} warm-up runs, then "
                 f"≥{s['min_runs']} runs and ≥{s['min_seconds']} s; threads intra-op {s['threads']['intra_op'] or 'default'}, "
                 f"inter-op {s['threads']['inter_op'] or 'default'}. Sizes in MB (10^6 bytes).")
    if s.get("session_memory"):
        lines.append(f"Session MB: the peak resident memory (MiB) a fresh process adds by opening the file and "
                     f"running it at batch {s['batch_sizes'][0]}; every batch size's in the sweep.")
    lines += ["", "## Devices", ""]
    for target, dev in report["devices"].items():
        gpu = dev.get("gpu")
        gpu_s = f"; GPU {gpu['name']} (driver {gpu.get('driver')})" if isinstance(gpu, dict) else ""
        emu = (f" — **emulated** ({dev.get('emulator') or 'emulator'}): its latencies are emulated time, not "
               f"device time; compare variants only by their ratios on this device") if dev.get("emulated") else ""
        lines.append(f"- **{target}**: {dev.get('cpu')} ({dev.get('arch')}, {dev.get('cores')} cores; ISA "
                     f"{', '.join(dev.get('isa') or []) or 'none listed'}){gpu_s}; {dev.get('platform')}{emu}")
    head = ["Device", "Variant", "Format", "Size MB", "Metric", "Value", "Retention", "p50 ms", "p90 ms", "Items/s",
            "from text p50 ms", "Session MB", "Status"]
    lines += ["", "## Results", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e, r in zip(report["models"], rows(report)):
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {(r['reason'] or '')[:80]}"
        ret = None if r["retention"] is None else f"{100 * r['retention']:.1f} %"
        name = md_escape(teacher_title(report, e)) + (" (teacher)" if r["role"] == "teacher" else "")
        emu = " (emulated)" if is_emulated(report, e["target"]) else ""
        lat = [_fmt(r["p50_ms"]), _fmt(r["p90_ms"]), _fmt(r["throughput"], 1), _fmt(r["e2e_p50_ms"])]
        lat = [v + emu if v != "–" else v for v in lat] + [_fmt(r["session_mb"], 0)]
        lines.append("| " + " | ".join([r["device"], name, f"{r['format']}/{r['precision']}", _fmt(r["size_mb"], 1),
                                          _fmt(r["metric"]), _fmt(r["value"], 4), _fmt(ret), *lat,
                                          status.replace("|", "/")]) + " |")
    lines += ratio_lines(report)
    sweeps = [(e, p) for e in report["models"] for p in e.get("points") or []]
    if any(len(e.get("points") or []) > 1 for e in report["models"]):
        lines += ["", "## Sweep", "", "| Device | Variant | Batch | Seq | p50 ms | p90 ms | p99 ms | Items/s | Session MB |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for e, p in sweeps:
            lat = p["latency_ms"]
            emu = " (emulated)" if is_emulated(report, e["target"]) else ""
            lines.append(f"| {e['target']}{emu} | {md_escape(e['name'])} | {p['batch']} | {p['seq']} | {lat['p50']:.2f} | "
                         f"{lat['p90']:.2f} | {lat['p99']:.2f} | {lat['throughput']:.1f} | "
                         f"{_fmt(session_mb_at(e, p['batch']), 0)} |")
    return "\n".join(lines) + "\n"


def _session_mb(entry: dict[str, Any]) -> float | None:
    """The fresh-process session memory of an entry at the headline batch (benchmarks.memory), None when not measured."""
    return (entry.get("session_memory") or {}).get("session_mb")


def session_mb_at(entry: dict[str, Any], batch: int) -> float | None:
    """The fresh-process session memory of an entry at one batch size, None when not measured there."""
    by_batch = (entry.get("session_memory") or {}).get("by_batch") or []
    return next((b["session_mb"] for b in by_batch if b["batch"] == batch), None)


def ratio_lines(report: dict[str, Any]) -> list[str]:
    """'## Ratios': each model's p50 speed-up and size reduction against the teacher (and each baseline, INT8 first).

    Speed-ups only ever divide two latencies measured on the same device: against the teacher on this
    machine; on a remote device (whose teacher is not measured there) against the first fp32 variant
    measured on that device, so an emulated device's milliseconds never meet another device's.
    """
    ok = [e for e in report["models"] if e["status"] == "ok" and e.get("latency_ms")]
    out = []
    for target in sorted({e["target"] for e in ok}):
        here = [e for e in ok if e["target"] == target]
        teacher = next((e for e in ok if e["role"] == "teacher" and e["target"] == "local"), None)
        if target == "local" and teacher is None:
            continue
        bases = sorted((e for e in here if e["role"] == "baseline"), key=lambda e: e["precision"] != "int8")
        head = ["Device", "Model", "Retention", "Speed-up vs teacher", "Teacher size / size"]
        head += [f"Speed-up vs {md_escape(b['name'])}" for b in bases]
        mem_ref = next((b for b in bases if b["precision"] == "fp32" and _session_mb(b)), None)
        if mem_ref is not None:
            head.append(f"{md_escape(mem_ref['name'])} session MB / session MB (batch {report['settings']['batch_sizes'][0]})")
        ref = None
        if target != "local":
            ref = next((e for e in here if e["role"] != "teacher" and e.get("precision") == "fp32"), None)
            if ref is not None:
                head.append(f"Speed-up vs {md_escape(ref['name'])} (same device)")
        rows_ = []
        for e in here:
            if e["role"] == "teacher":
                continue
            p50 = e["latency_ms"]["p50"]
            ret = "–" if e.get("retention") is None else f"{100 * e['retention']:.1f} %"
            cells = [target, md_escape(model_title(e)), ret,
                     f"{teacher['latency_ms']['p50'] / p50:.2f}×" if teacher and target == "local" and p50 else "–",
                     f"{teacher['size_mb'] / e['size_mb']:.2f}×" if teacher and e.get("size_mb") else "–"]
            cells += [f"{b['latency_ms']['p50'] / p50:.2f}×" if p50 else "–" for b in bases]
            if mem_ref is not None:
                cells.append(f"{_session_mb(mem_ref) / _session_mb(e):.2f}×" if _session_mb(e) else "–")
            if ref is not None:
                cells.append(f"{ref['latency_ms']['p50'] / p50:.2f}×" if p50 else "–")
            rows_.append("| " + " | ".join(cells) + " |")
        if rows_:
            title = f"## Ratios ({target}, emulated: ratios between variants on this device only)" \
                if is_emulated(report, target) else f"## Ratios ({target})"
            out += ["", title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head), *rows_]
    return out


def to_csv(report: dict[str, Any]) -> str:
    """One row per (model, target)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    for r in rows(report):
        w.writerow(r)
    return buf.getvalue()


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated by another (lower latency and higher-or-equal retention)."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def plot_pareto(report: dict[str, Any], path: Path) -> Path | None:
    """Latency (p50) against retention, marker area by file size, one colour per device; None if nothing to plot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    entries = [e for e in report["models"] if e.get("latency_ms") and e.get("retention") is not None]
    if not entries:
        return None
    # a Figure with its own Agg canvas: pyplot's global backend (a notebook's inline one) is left alone
    key_lines = [f"{i + 1}  {model_title(e).replace('$', chr(92) + '$')} {e.get('format') or ''} ({e.get('size_mb') or 0:.1f} MB"
                 f"{', ' + e['target'] if e['target'] != 'local' else ''})" for i, e in enumerate(entries)]
    number = {id(e): i + 1 for i, e in enumerate(entries)}
    columns = 1 if len(key_lines) <= 8 else 2
    key_rows = -(-len(key_lines) // columns)
    key_height = 0.2 * key_rows + 0.3
    fig = Figure(figsize=(8, 4.5 + key_height), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    targets = sorted({e["target"] for e in entries})
    max_size = max((e.get("size_mb") or 0) for e in entries) or 1.0
    for k, t in enumerate(targets):
        es = [e for e in entries if e["target"] == t]
        xs = [e["latency_ms"]["p50"] for e in es]
        ys = [100 * e["retention"] for e in es]
        sizes = [30 + 600 * (e.get("size_mb") or 0) / max_size for e in es]
        ax.scatter(xs, ys, s=sizes, alpha=0.6, label=t, color=f"C{k}", edgecolors="black", linewidths=0.5)
        for e, x, y in zip(es, xs, ys):  # a number at the point, the name in the key below: names never overlap
            ax.annotate(str(number[id(e)]), (x, y), fontsize=8, fontweight="bold", xytext=(3, 3), textcoords="offset points")
        front = pareto_front(list(zip(xs, ys)))
        if len(front) > 1:
            ax.plot([xs[i] for i in front], [ys[i] for i in front], "--", color=f"C{k}", linewidth=1)
    ax.set_xlabel("latency p50 (ms, lower is better)")
    ax.set_ylabel("quality retention vs teacher (%)")
    ax.set_title(f"{report['task']}: retention vs latency (marker area ∝ file size)")
    ax.grid(alpha=0.3)
    legend = ax.legend(fontsize=8, title="device", title_fontsize=8, loc="lower right")
    for handle in legend.legend_handles:
        handle.set_sizes([30])
    fig.tight_layout(rect=(0, key_height / (4.5 + key_height), 1, 1))
    for c in range(columns):
        fig.text(0.02 + c * 0.5, (key_height - 0.15) / (4.5 + key_height),
                 "\n".join(key_lines[c * key_rows:(c + 1) * key_rows]), fontsize=7, va="top", family="monospace")
    fig.savefig(path)
    return path


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write report.json, report.md, report.csv and pareto.png into ``out_dir``; return their paths."""
    from compress.core.fsio import write_text, writing

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "csv": out_dir / "report.csv"}
    write_text(paths["json"], json.dumps(report, indent=2, default=str) + "\n")  # whole or not at all; a full
    write_text(paths["md"], to_markdown(report))  # disk is one line naming the file
    write_text(paths["csv"], to_csv(report))
    with writing(out_dir / "pareto.png"):
        png = plot_pareto(report, out_dir / "pareto.png")
    if png is not None:
        paths["png"] = png
    return paths


# ------------------------------------------------------------------------------------------ compare


def find_report(path: str | Path) -> Path:
    """A report.json itself, or the one inside a run or bench folder (newest *bench*/report.json)."""
    p = Path(path)
    if p.is_file():
        return p
    if p.is_dir():
        if (p / "report.json").is_file():
            return p / "report.json"
        found = sorted(p.glob("*/report.json"))
        if found:
            return found[-1]
    raise EdgepressError(f"no report.json at '{path}' (give a report.json, a run folder, or a bench output folder)")


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a report.json, checking it is one."""
    p = find_report(path)
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise EdgepressError(f"'{p}' is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or "models" not in data or "schema_version" not in data:
        raise EdgepressError(f"'{p}' is not an edgepress report.json (no schema_version/models)")
    data["_path"] = str(p)
    return data


def _identity(e: dict[str, Any]) -> tuple[str, str]:
    """What makes two report rows one model: its weight bytes (sha256) and where it ran; the name, format and
    precision for reports written before hashes were recorded."""
    return (e.get("sha256") or f"{e['name']}|{e['format']}|{e.get('precision') or ''}", e["target"])


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|~$"} | {"\n": " ", "\r": " "})


def md_escape(text: Any) -> str:
    """A user-given name as literal Markdown text (a table cell keeps its columns; no link, emphasis or HTML)."""
    return str(text).translate(_MD_SPECIAL)


def model_title(e: dict[str, Any]) -> str:
    """A row's name and what the model is (``student [d3-p30-v30522-int8]``)."""
    return f"{e['name']} [{e['label']}]" if e.get("label") else e["name"]


def teacher_title(report: dict[str, Any], e: dict[str, Any]) -> str:
    """``model_title``, except that the teacher's row names the teacher model (``teacher_model``), not 'teacher'."""
    if e.get("role") == "teacher" and report.get("teacher_model"):
        return model_title({**e, "name": report["teacher_model"]})
    return model_title(e)


def _facts(report: dict[str, Any]) -> dict[str, Any]:
    s, d = report.get("settings") or {}, report.get("data") or {}
    local = (report.get("devices") or {}).get("local") or {}
    threads = s.get("threads") or {}
    return {"task": report.get("task"), "metric": d.get("metric"),
            "eval rows": f"{d.get('source')} ({d.get('rows')} rows)" if d else None,
            "threads": f"{threads.get('intra_op') or 'default'}/{threads.get('inter_op') or 'default'}",
            "batch": ",".join(map(str, s.get("batch_sizes") or [])),
            "lengths": "realistic" if s.get("realistic") else ",".join(map(str, s.get("seq_lens") or [])),
            "max_length": s.get("max_length"), "device": s.get("device"), "cpu": local.get("cpu"),
            "isa": " ".join(local.get("isa") or []) or None}


def settings_diff(reports: list[dict[str, Any]], labels: list[str]) -> list[str]:
    """One line per setting that differs between the reports (task, metric, eval rows, threads, batch, lengths,
    device, CPU): numbers side by side under different settings are not a like-for-like comparison."""
    facts = [_facts(r) for r in reports]
    out = []
    for key in facts[0]:
        values = [f.get(key) for f in facts]
        if len({str(v) for v in values}) > 1:
            out.append(f"{key} differs: " + "; ".join(f"{lab}={v}" for lab, v in zip(labels, values)))
    return out


def _cells(e: dict[str, Any] | None) -> list[str]:
    if e is None:
        return ["–"] * 4
    if e.get("status") != "ok":
        reason = str(e.get("reason") or "")
        failed = f"{e['status']}: {reason[:60]}{'…' if len(reason) > 60 else ''}"
        return [failed, "–", "–", _fmt(e.get("size_mb"), 1)]
    q, lat, ret = e.get("quality") or {}, e.get("latency_ms") or {}, e.get("retention")
    return [f"{q['metric']}={q['value']:.4f}" if q.get("value") is not None else "–",
            f"{100 * ret:.1f} %" if ret is not None else "–",
            f"{lat['p50']:.2f}" if lat.get("p50") is not None else "–", _fmt(e.get("size_mb"), 1)]


def _deltas(first: dict[str, Any] | None, e: dict[str, Any] | None) -> list[str]:
    """Retention change (percentage points) and p50 ratio of ``e`` against the first report's same model."""
    ok = [x for x in (first, e) if x is not None and x.get("status") == "ok"]
    if len(ok) < 2:
        return ["–", "–"]
    r0, r1 = first.get("retention"), e.get("retention")
    p0, p1 = (first.get("latency_ms") or {}).get("p50"), (e.get("latency_ms") or {}).get("p50")
    return [f"{100 * (r1 - r0):+.1f} pp" if r0 is not None and r1 is not None else "–",
            f"{p1 / p0:.2f}×" if p0 and p1 else "–"]


def compare(reports: list[dict[str, Any]], labels: list[str] | None = None
            ) -> tuple[list[str], list[str], list[list[str]]]:
    """Side-by-side table of several reports: (notes, header, rows).

    A row is one model (matched across reports by the hash of its weights) on one target; per report its
    metric, retention, p50 and size, failed models with their reason, and for every report after the first the
    change in retention and the p50 ratio against the first. ``notes`` names every setting that differs.
    """
    labels = labels or [Path(r.get("_path", f"run{i}")).parent.name or f"run{i}" for i, r in enumerate(reports)]
    keys: list[tuple[str, str]] = []
    cells: dict[tuple[tuple[str, str], int], dict[str, Any]] = {}
    for i, rep in enumerate(reports):
        for e in rep["models"]:
            key = _identity(e)
            if key not in keys:
                keys.append(key)
            cells.setdefault((key, i), e)
    header = ["model", "format", "target"]
    for k, lab in enumerate(labels):
        header += [f"{lab} metric", f"{lab} retention", f"{lab} p50 ms", f"{lab} size MB"]
        if k:
            header += [f"{lab} Δ retention", f"{lab} p50 vs {labels[0]}"]
    table = []
    for key in keys:
        seen = [cells[(key, i)] for i in range(len(reports)) if (key, i) in cells]
        titles = list(dict.fromkeys(model_title(e) for e in seen))
        sha = seen[0].get("sha256")
        row = [" / ".join(titles) + (f" #{sha[:8]}" if sha else ""),
               f"{seen[0]['format']}/{seen[0].get('precision') or ''}", key[1]]
        for i in range(len(reports)):
            row += _cells(cells.get((key, i)))
            if i:
                row += _deltas(cells.get((key, 0)), cells.get((key, i)))
        table.append(row)
    return settings_diff(reports, labels), header, table


def compare_markdown(header: list[str], table: list[list[str]], notes: list[str] | None = None) -> str:
    """The compare table as Markdown, under the settings that differ."""
    lines = [f"> {n}" for n in notes or []] + ([""] if notes else [])
    lines += ["| " + " | ".join(map(md_escape, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(md_escape, r)) + " |" for r in table]
    return "\n".join(lines) + "\n"
