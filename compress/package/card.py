"""The model card (``final/README.md`` and ``final/model/README.md``): what the model is, how it was made, what
it scored, how to load it.

The YAML header is written by huggingface_hub's ``ModelCardData`` (Hugging Face's model-card conventions):
the teacher's hub id as ``base_model``, the teacher's license, the hub datasets the run trained on, tags for
what the run did, and the bench report's numbers as ``model-index`` results. Snippets use paths relative to
the folder the card is written into, so they run as written from there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.tasks import TASKS, TaskTable

if TYPE_CHECKING:
    from benchmarks.report_types import BenchRows
    from compress.config import RunConfig
    from export.bundle import BundleManifest
    from compress.model.interface import ModelInterface
    from compress.package.choice import Choice
    from compress.package.record import PackageRecord

PIPELINE_TAG = TaskTable("pipeline_tag")


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _results(bench: "BenchRows | None") -> list[str]:
    if bench is None or bench.teacher is None:
        return ["No bench stage ran in this run, so no measured quality or latency is reported here."]
    t, c, data = bench.teacher, bench.chosen, bench.data
    lines = [f"Measured by the run's bench stage on `{source_label(data.source)}` ({data.rows} rows, metric "
             f"`{data.metric}`); latency at batch {', '.join(map(str, bench.batch_sizes))}"
             f"{', lengths drawn from the eval texts' if bench.realistic else ''}, on {bench.cpu} "
             f"({bench.cores} cores).", "",
             "| model | format | size MB | metric | retention | p50 ms |", "|---|---|---:|---:|---:|---:|"]
    for e in (t, c):
        if e is None:
            continue
        ret = e.retention
        lines.append(f"| {e.name}{' (teacher)' if e is t else ''} | {e.format}/{e.precision} | "
                     f"{_fmt(e.size_mb, 1)} | {_fmt(e.value)} | "
                     f"{'–' if ret is None else f'{100 * ret:.1f} %'} | {_fmt(e.p50_ms, 2)} |")
    if c is None:
        lines.append("")
        lines.append("(The shipped file was not among the bench stage's measured files.)")
    return lines


DEMO_CORPORA = {"builtin:pydoc": "sentences from CPython's documentation, edgepress's built-in demo corpus"}
FIDELITY_METRICS = {"fidelity_cosine": "mean cosine between the student's and the teacher's embeddings",
                    "fidelity_spearman": "Spearman correlation of the student's scores with the teacher's",
                    "top1_agreement": "share of rows where the student's top class is the teacher's",
                    "word_agreement": "share of words tagged as the teacher tags them",
                    "answer_agreement": "share of questions answered as the teacher answers them"}
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")
JS_POOLING = {"mean": "mean", "cls": "cls", "lasttoken": "last_token"}  # sentence-transformers -> transformers.js
# where each card is written (relative to final/) -> the paths its snippets use for model/, onnx/, bundle/
CARD_FOLDERS = {".": {"model": "model", "onnx": "onnx", "bundle": "bundle", "js_root": "."},
                "model": {"model": ".", "onnx": "../onnx", "bundle": "../bundle", "js_root": ".."}}


def source_label(source: str | None) -> str:
    """A data source as a shipped file may name it: hub and builtin names as written, a local file by its name."""
    if not source:
        return "–"
    if source.startswith(("hub:", "builtin:")):
        return source
    return Path(source).name


def hub_dataset(source: str) -> str | None:
    """The hub dataset id of a ``hub:`` source; None for files and builtin corpora, which are not on the hub."""
    if not source.startswith("hub:"):
        return None
    from compress.data.rows import parse_hub_spec

    return parse_hub_spec(source)[0]


@dataclass
class Teacher:
    """The teacher as a card names it: its hub id (None when it has none), its license and language."""

    spec: str  # as the config spells it
    hub_id: str | None
    license: str | None
    language: Any
    local: bool

    @property
    def reference(self) -> str:
        """A name for the teacher that is no path of this machine: hub id, the config's name, or the folder name."""
        if self.hub_id:
            return self.hub_id
        return Path(self.spec).name if self.local else self.spec


def _hub_id(value: Any) -> str | None:
    """``value`` when it reads as a hub model id (``name`` or ``org/name``) and is no existing path."""
    if not isinstance(value, str) or not HUB_ID.fullmatch(value) or Path(value).expanduser().exists():
        return None
    return value


def _card_data(readme: Path | None) -> dict[str, Any]:
    """The YAML header of a model card as a dict ({} when there is none or it does not parse)."""
    if readme is None or not Path(readme).is_file():
        return {}
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(str(readme), ignore_metadata_errors=True).data.to_dict()
    except Exception:  # noqa: BLE001 - a teacher's broken card must not stop packaging; it just adds nothing
        return {}


def teacher_of(spec: str) -> Teacher:
    """The teacher's hub id, license and language: ``packaged:`` names map to the hub model they copy, a hub name
    is its own id, a local folder names one in its card's ``base_model`` (else in config.json's
    ``_name_or_path`` as ``org/name``) or has none."""
    from compress.model.loading import PACKAGED_HUB_IDS, resolve_model_path

    local = not spec.startswith("packaged:") and Path(spec).expanduser().is_dir()
    try:
        folder = Path(resolve_model_path(spec))
    except Exception:  # noqa: BLE001 - the run already loaded the teacher; a card without its details still ships
        folder = None
    readme = folder / "README.md" if folder is not None and folder.is_dir() else None
    if readme is None and not local and not spec.startswith("packaged:"):
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(spec, "README.md")
        readme = Path(cached) if isinstance(cached, str) else None
    data = _card_data(readme)
    if spec.startswith("packaged:"):
        hub_id = PACKAGED_HUB_IDS.get(spec.split(":", 1)[1])
    elif not local:
        hub_id = spec
    else:
        base = data.get("base_model")
        hub_id = _hub_id(base[0] if isinstance(base, list) and len(base) == 1 else base)
        if hub_id is None and folder is not None and (folder / "config.json").is_file():
            try:
                named = json.loads((folder / "config.json").read_text()).get("_name_or_path")
            except (OSError, ValueError):
                named = None
            hub_id = _hub_id(named) if isinstance(named, str) and "/" in named else None
    return Teacher(spec, hub_id, data.get("license"), data.get("language"), local)


def _snippets(task: str, iface: "ModelInterface", files: dict[str, str], where: str) -> list[str]:
    """Markdown code blocks that load each folder, with paths relative to the card's folder ``where``."""
    paths = CARD_FOLDERS[where]
    m, o = paths["model"], paths["onnx"]
    spec = TASKS[task]
    text = spec.example
    blocks: list[list[str]] = []
    if iface.sentence_transformers:
        pt = ["from sentence_transformers import SentenceTransformer", "",
              f'model = SentenceTransformer("{m}")  # PyTorch: the teacher\'s pooling, normalisation, max length',
              f'onnx_model = SentenceTransformer("{m}", backend="onnx", model_kwargs={{"file_name": "onnx/model.onnx"}})']
        if "st_onnx_int8" in files:
            name = files["st_onnx_int8"].split("/", 1)[1]
            pt.append(f'int8_model = SentenceTransformer("{m}", backend="onnx", model_kwargs={{"file_name": "{name}"}})')
        pt += [f'embeddings = {"int8_model" if "st_onnx_int8" in files else "onnx_model"}.encode(["{text}", "Another one."])',
               "print(embeddings.shape)"]
        blocks.append(pt)
    elif spec.ort_class is not None:
        auto = spec.head.auto_class
        blocks.append([f"from transformers import AutoTokenizer, {auto}, pipeline", "",
                       f'model = {auto}.from_pretrained("{m}")', f'tokenizer = AutoTokenizer.from_pretrained("{m}")',
                       f'run = pipeline("{spec.optimum_task}", model=model, tokenizer=tokenizer)',
                       f'print(run("{text}"))' if not spec.pooled else f'print(len(run("{text}")[0]), "token vectors")'])
    if spec.ort_class is not None:
        ort = spec.ort_class
        file_name = "model_quantized.onnx" if "onnx_int8" in files else "model.onnx"
        kwargs = (f', tokenize_kwargs={{"truncation": True, "max_length": {iface.max_seq_length}}}'
                  if spec.pooled else "")
        shown = f'print(len(run("{text}")[0]), "token vectors")' if spec.pooled else f'print(run("{text}"))'
        blocks.append([f"from optimum.onnxruntime import {ort}", "from transformers import AutoTokenizer, pipeline", "",
                       f"# optimum may note that {file_name} is also under onnx/ (transformers.js' name): the same file",
                       f'ort_model = {ort}.from_pretrained("{o}", file_name="{file_name}")',
                       f'run = pipeline("{spec.optimum_task}", model=ort_model, '
                       f'tokenizer=AutoTokenizer.from_pretrained("{o}"){kwargs})',
                       shown])
    lines = ["## Load it", "", "Paths are relative to this card's folder; each block runs as written from here.", ""]
    for block in blocks:
        lines += ["```python", *block, "```", ""]
    js = _js_snippet(task, iface, files, paths["js_root"])
    if js:
        lines += ["In JavaScript (transformers.js, Node or the browser) the same folder loads as it is: "
                  "`onnx/model.onnx` is `dtype: \"fp32\"`, `onnx/model_quantized.onnx` is `dtype: \"q8\"`.", "",
                  "```js", *js, "```", ""]
    lines += ["On a device: `bundle/` holds the model file(s), `tokenizer/tokenizer.json`, `manifest.json` (inputs, "
              "outputs, max length, pooling, labels, quantization) and `reference.py`, which needs only onnxruntime, "
              "numpy and tokenizers:", "", "```bash", f'python {paths["bundle"]}/reference.py "{text}"', "```"]
    return lines


def _js_snippet(task: str, iface: "ModelInterface", files: dict[str, str], root: str) -> list[str]:
    """transformers.js lines for the model folder, or [] where its pipeline cannot pool like the teacher."""
    dtype = "q8" if "onnx_int8" in files else "fp32"
    head = ['import { env, pipeline } from "@huggingface/transformers";', "",
            f'env.localModelPath = "{root}";  // the folder holding model/', "env.allowRemoteModels = false;"]
    if TASKS[task].pooled:
        modes = iface.pooling_modes
        if len(modes) != 1 or modes[0] not in JS_POOLING:
            return []
        return head + [f'const extract = await pipeline("feature-extraction", "model", {{ dtype: "{dtype}" }});',
                       f'const out = await extract(["A sentence to embed."], {{ pooling: "{JS_POOLING[modes[0]]}", '
                       f'normalize: {"true" if iface.normalize else "false"} }});', "console.log(out.dims);"]
    if TASKS[task].label_kind == "classes":
        return head + [f'const classify = await pipeline("text-classification", "model", {{ dtype: "{dtype}" }});',
                       'console.log(await classify("A sentence to classify."));']
    return []


def _quality_note(bench: "BenchRows | None", cfg: "RunConfig") -> list[str]:
    """A plain sentence on what the quality number is: teacher fidelity, and on which data."""
    metric = bench.data.metric if bench is not None else None
    source = (bench.data.source if bench is not None else None) or cfg.data.train
    if bench is None or bench.teacher is None:
        what = DEMO_CORPORA.get(cfg.data.train)
        return [f"No quality was measured in this run. It was trained on {what or f'`{source_label(cfg.data.train)}`'}; "
                "measure it on your own data before relying on it."] if what else []
    lines = []
    if metric in FIDELITY_METRICS:
        demo = DEMO_CORPORA.get(source)
        where = (f"only on edgepress's demo corpus (`{source}`, {demo.split(',')[0]})" if demo
                 else f"on `{source_label(source)}`")
        lines.append(f"**Quality was measured {where} as fidelity to the teacher ({FIDELITY_METRICS[metric]}), not as "
                     "accuracy on a task.** It says how closely the student follows the teacher on text like the "
                     "text it was trained on; measure it on your own data before relying on it.")
    return lines


def _recipe_tags(recipe: dict[str, Any], precision: str, iface: "ModelInterface") -> list[str]:
    tags = ["edgepress", "onnx"]
    if iface.sentence_transformers:
        tags += ["sentence-transformers", "feature-extraction"]
    tags += [t for t, did in (("distillation", recipe.get("distilled")), ("pruning", recipe.get("pruned")),
                              ("vocabulary-trimming", recipe.get("vocab_trimmed"))) if did]
    if precision == "int8":
        tags += ["quantization", "int8"]
    tags.append("transformers.js")
    return tags


def _eval_results(cfg: "RunConfig", bench: "BenchRows | None") -> list[Any]:
    """model-index results: the shipped file's quality (and retention) as the bench stage measured them."""
    from huggingface_hub import EvalResult

    chosen = bench.chosen if bench is not None else None
    if chosen is None or chosen.value is None or not chosen.metric:
        return []
    source = bench.data.source or ""
    hub = hub_dataset(source)
    common = {"task_type": PIPELINE_TAG.get(cfg.task, cfg.task), "dataset_type": hub or source_label(source),
              "dataset_name": DEMO_CORPORA.get(source) or hub or source_label(source), "dataset_split": "held-out eval rows"}
    metric = chosen.metric
    results = [EvalResult(**common, metric_type=metric, metric_value=round(float(chosen.value), 4),
                          metric_name=FIDELITY_METRICS.get(metric, metric))]
    if chosen.retention is not None:
        results.append(EvalResult(**common, metric_type="retention", metric_value=round(float(chosen.retention), 4),
                                  metric_name=f"{metric} as a share of the teacher's"))
    return results


def model_card(cfg: "RunConfig", choice: "Choice", iface: "ModelInterface", bench: "BenchRows | None",
               manifest: "BundleManifest", info: "PackageRecord", teacher: Teacher, where: str = ".") -> str:
    """The card as Markdown with Hugging Face's YAML header, its snippets relative to ``where`` (``.`` for
    ``final/README.md``, ``model`` for ``final/model/README.md``)."""
    from huggingface_hub import ModelCard, ModelCardData

    recipe_facts = info.recipe
    sources = [cfg.data.train, *(u.source for u in cfg.data.unlabeled)]
    datasets = sorted({d for d in map(hub_dataset, sources) if d})
    results = _eval_results(cfg, bench)
    metric = bench.data.metric if bench is not None else None
    header = ModelCardData(
        base_model=teacher.hub_id, license=teacher.license, language=teacher.language, datasets=datasets or None,
        library_name="sentence-transformers" if iface.sentence_transformers else "transformers",
        pipeline_tag=PIPELINE_TAG.get(cfg.task, cfg.task), tags=_recipe_tags(recipe_facts, choice.precision, iface),
        metrics=[metric] if metric else None, model_name=cfg.name if results else None, eval_results=results or None)
    name = teacher.reference
    linked = f"[`{name}`](https://huggingface.co/{name})" if teacher.hub_id else f"`{name}`"
    train = ", ".join(f"`{source_label(s)}`" + (f" ({DEMO_CORPORA[s]})" if s in DEMO_CORPORA else
                                                 "" if hub_dataset(s) else " (a local file)") for s in sources)
    layers = manifest.num_layers
    recipe = [f"- stages: {' → '.join(cfg.stages)}; student: {layers} layer{'s' * (layers != 1)}, hidden "
              f"{manifest.hidden_size}" + ("" if recipe_facts.get("pruned") else "; nothing pruned"),
              f"- shipped: **{choice.name}** ({choice.origin}, {choice.precision}"
              + (f", runs in {choice.runtime}: `{choice.runtime}/`)" if choice.runtime != "onnxruntime" else ")")
              + (f", quantized with `{manifest.quantization_method}`" if manifest.quantization_method else ""),
              f"- interface (same as the teacher's): {iface.describe()}",
              f"- training data: {train}"]
    if iface.id2label:
        recipe.append(f"- labels: {', '.join(f'{k}={v}' for k, v in sorted(iface.id2label.items()))}")
    lic = (f"The teacher's license, `{teacher.license}`, applies: this model is derived from its weights."
           if teacher.license else f"The teacher's card names no license; check {linked}'s terms before you share "
                                   "this model.")
    body = [f"# {cfg.name}: a compressed {name}", "",
            f"Made by edgepress from the teacher {linked} for task `{cfg.task}`.", "",
            *(line for note in _quality_note(bench, cfg) for line in (note, "")),
            "## Recipe", "", *recipe, "", "## Results", "", *_results(bench), "",
            *_snippets(cfg.task, iface, info.files, where), "",
            "## Files", "", *_files(info, where), "", "## License", "", lic, ""]
    card = ModelCard(f"---\n{header.to_yaml()}\n---\n\n" + "\n".join(body))
    return str(card)


def _files(info: "PackageRecord", where: str) -> list[str]:
    base = "" if where == "." else "../"
    here = " (this folder)" if where == "model" else ""
    st = " (sentence-transformers modules included)" if "st_onnx" in info.files else ""
    return [f"- `{base}model/`{here}: Hugging Face folder{st}, "
            "with `onnx/model.onnx`" + (" and `onnx/model_quantized.onnx`" if "onnx_int8" in info.files else ""),
            f"- `{base}onnx/`: optimum's folder (`model.onnx`"
            + (", `model_quantized.onnx`" if "onnx_int8" in info.files else "")
            + ", config.json, tokenizer), the same files under `onnx/` for transformers.js",
            f"- `{base}bundle/`: {', '.join(info.bundle.models)} ({info.bundle.size_mb:.1f} MB with "
            "tokenizer and manifest)",
            *(f"- `{base}{fmt}/`: {r.runtime_name} — `{r.file}` ({r.precision}), tokenizer and "
              "manifest.json (how to call it)" for fmt, r in info.runtimes.items()),
            "- Every name of one model file is a hard link to the same bytes: copy the folder with a tool that keeps "
            "hard links (`cp -a`, `rsync -H`, `tar`) to keep it that small."]
