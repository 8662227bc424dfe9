"""The `bench run` options made from BenchConfig's fields (one per field: name, type, default, bound, help)."""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional

import typer

from benchmarks.config import BenchConfig
from compress.core.errors import EdgepressError, UsageError

MAX_TOKENS = 8192  # no BERT-family model takes longer inputs; a larger --seq / --max-length is a typo


def _ints(text: str, what: str, upper: int | None = None) -> list[int]:
    """Comma-separated positive integers (at most ``upper``) from option ``--what``'s text."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--{what} '{text}': expected comma-separated integers, e.g. 1,8") from None
    if not values or min(values) < 1:
        raise UsageError(f"--{what} '{text}': expected positive integers")
    if upper is not None and max(values) > upper:
        raise UsageError(f"--{what} '{text}': {max(values)} is beyond {upper} tokens, longer than any BERT-family "
                         "model takes")
    return values


# ------------------------------------------------------------------ bench-section options, made from BenchConfig

MEASURING_PANEL = "Measuring (the config's bench section)"
SWITCHES_PANEL = "Measuring switches (the config's bench section)"


@dataclass(frozen=True)
class ConfigOption:
    """A `bench run` option that sets BenchConfig ``fields``: its ``flag`` and a CLI-only ``note`` for its help.

    Name, type, default, lower bound and help text come from the fields themselves. A list of ints is typed
    comma-separated; ``--batch`` fills two fields: the first size is ``batch_size``, the rest ``sweep_batch_sizes``.
    """

    flag: str
    fields: tuple[str, ...]
    note: str = ""
    upper: int | None = None  # largest value a comma-separated list takes

    @property
    def name(self) -> str:
        """The command's parameter name (the flag without dashes)."""
        return self.flag.lstrip("-").replace("-", "_")


# how `bench run` spells BenchConfig fields, in --help order; a field left out gets --its-name-with-dashes
# (after these), so every field has an option (pinned by tests/benchmarks/test_cli_options.py)
SPELLINGS: tuple[ConfigOption, ...] = (
    ConfigOption("--batch", ("batch_size", "sweep_batch_sizes"), "comma-separated: the first is bench.batch_size, "
                 "the rest bench.sweep_batch_sizes"),
    ConfigOption("--seq", ("seq_lens",), "comma-separated; measured with --no-realistic or without --data",
                 upper=MAX_TOKENS),
    ConfigOption("--realistic", ("realistic",), "needs --data; without it the fixed --seq lengths are measured"),
    ConfigOption("--max-samples", ("max_eval_samples",)),
    ConfigOption("--threads", ("threads",)),
    ConfigOption("--inter-threads", ("inter_threads",)),
    ConfigOption("--warmup", ("warmup",)),
    ConfigOption("--min-runs", ("min_runs",)),
    ConfigOption("--min-seconds", ("min_seconds",)),
    ConfigOption("--device", ("device",)),
    ConfigOption("--target", ("targets",), "repeatable; ONNX/ORT, LiteRT (.tflite) and OpenVINO (.xml) models only"),
    ConfigOption("--known-hosts", ("known_hosts",)),
    ConfigOption("--host-key", ("host_key",)),
    ConfigOption("--identity", ("ssh_identity",)),
    ConfigOption("--remote-python", ("remote_python",)),
    ConfigOption("--remote-dir", ("remote_dir",)),
    ConfigOption("--baseline", ("baselines",), "repeatable; built from --teacher (a PyTorch folder) into OUT/baselines"),
)


def _all_options(spelled: tuple[ConfigOption, ...]) -> tuple[ConfigOption, ...]:
    """``spelled``, then an option named after each BenchConfig field they leave out."""
    covered = {f for opt in spelled for f in opt.fields}
    rest = [ConfigOption("--" + name.replace("_", "-"), (name,)) for name in BenchConfig.model_fields if name not in covered]
    return (*spelled, *rest)


CONFIG_OPTIONS = _all_options(SPELLINGS)


def _field(name: str) -> Any:
    """BenchConfig's pydantic FieldInfo of ``name``."""
    return BenchConfig.model_fields[name]


def field_default(name: str) -> Any:
    """The default of BenchConfig field ``name`` (a fresh list for list fields)."""
    return _field(name).get_default(call_default_factory=True)


def _without_none(annotation: Any) -> Any:
    """``X`` for ``X | None``, else ``annotation`` itself."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    is_optional = type(None) in typing.get_args(annotation) and len(args) == 1
    return args[0] if is_optional else annotation


def _choices(annotation: Any) -> tuple[str, ...]:
    """The values of a Literal (or of a list of Literals); empty for any other type."""
    inner = _without_none(annotation)
    if typing.get_origin(inner) is list:
        inner = typing.get_args(inner)[0]
    return tuple(typing.get_args(inner)) if typing.get_origin(inner) is Literal else ()


def _is_list(annotation: Any) -> bool:
    """Whether a field holds a list."""
    return typing.get_origin(annotation) is list


def _is_int_list(annotation: Any) -> bool:
    """Whether a field holds a list of ints."""
    return _is_list(annotation) and typing.get_args(annotation) == (int,)


def is_comma_list(opt: ConfigOption) -> bool:
    """Whether the option is typed as comma-separated ints (it sets a list of ints)."""
    return any(_is_int_list(_field(f).annotation) for f in opt.fields)


def option_type(opt: ConfigOption) -> Any:
    """The Python type typer parses the option's text into."""
    annotation = _field(opt.fields[0]).annotation
    if is_comma_list(opt):
        return str
    if _is_list(annotation):
        return list[str]
    if _choices(annotation):
        return str
    inner = _without_none(annotation)
    return Optional[inner] if inner is not annotation else annotation


def option_default(opt: ConfigOption) -> Any:
    """The option's default, written as the command line takes it (int lists comma-separated)."""
    if is_comma_list(opt):
        values = [v for f in opt.fields for v in _as_list(field_default(f))]
        return ",".join(str(v) for v in values)
    return field_default(opt.fields[0])


def _as_list(value: Any) -> list[Any]:
    """``value`` as a list (a scalar field such as batch_size becomes one item)."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _lower_bound(name: str) -> int | float | None:
    """The ``ge`` bound pydantic checks on a scalar field, for typer's ``min``."""
    return next((getattr(m, "ge") for m in _field(name).metadata if hasattr(m, "ge")), None)


def option_help(opt: ConfigOption) -> str:
    """The fields' descriptions, then the CLI note; a single field's config key (bench.NAME) closes it."""
    text = "; ".join(_field(f).description or f for f in opt.fields)
    if opt.note:
        text += f"; {opt.note}"
    return text if len(opt.fields) > 1 else f"{text} (bench.{opt.fields[0]})"


def typer_option(opt: ConfigOption) -> Any:
    """The typer.Option declaring ``opt``: flag (``--x/--no-x`` for booleans), default, bound and help."""
    decls = [f"{opt.flag}/--no-{opt.flag[2:]}" if option_type(opt) is bool else opt.flag]
    extra: dict[str, Any] = {}
    if len(opt.fields) == 1 and not _is_list(_field(opt.fields[0]).annotation):
        bound = _lower_bound(opt.fields[0])
        if bound is not None and option_type(opt) is not bool:
            extra["min"] = bound
    # on/off switches in a panel of their own: their --no-X names take a column that would squeeze every help text
    panel = SWITCHES_PANEL if option_type(opt) is bool else MEASURING_PANEL
    return typer.Option(option_default(opt), *decls, help=option_help(opt), rich_help_panel=panel, **extra)


def _check_choices(opt: ConfigOption, value: Any) -> None:
    """Refuse a value outside a Literal field's choices, naming the flag (like --task)."""
    choices = _choices(_field(opt.fields[0]).annotation)
    for v in _as_list(value) if choices else ():
        if v not in choices:
            raise EdgepressError(f"{opt.flag} '{v}': expected one of {', '.join(choices)}")


def option_values(opt: ConfigOption, value: Any) -> dict[str, Any]:
    """BenchConfig field -> value for what the option was given (comma lists parsed, --batch split)."""
    _check_choices(opt, value)
    if not is_comma_list(opt):
        return {opt.fields[0]: value}
    numbers = _ints(value, opt.flag[2:], opt.upper)
    if len(opt.fields) == 1:
        return {opt.fields[0]: numbers}
    head, rest = opt.fields
    return {head: numbers[0], rest: numbers[1:]}


def bench_config(given: dict[str, Any]) -> BenchConfig:
    """The BenchConfig the options describe (parameter name -> typed value); a value it refuses names its flag."""
    from pydantic import ValidationError

    values: dict[str, Any] = {}
    for opt in CONFIG_OPTIONS:
        values.update(option_values(opt, given[opt.name]))
    try:
        return BenchConfig.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        flag = next((o.flag for o in CONFIG_OPTIONS if field in o.fields), "bench options")
        raise UsageError(f"{flag}: {err['msg']}") from None


def with_bench_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with one typer option per CONFIG_OPTIONS entry in place of its ``bench`` parameter, which
    it receives as the validated BenchConfig."""
    hints = typing.get_type_hints(command)
    own = [p.replace(annotation=hints[p.name]) for p in inspect.signature(command).parameters.values()
           if p.name != "bench"]
    made = [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=typer_option(o), annotation=option_type(o))
            for o in CONFIG_OPTIONS]

    def wrapper(**kwargs: Any) -> None:
        given = {o.name: kwargs.pop(o.name) for o in CONFIG_OPTIONS}
        return command(**kwargs, bench=bench_config(given))

    functools.update_wrapper(wrapper, command)
    del wrapper.__wrapped__  # typer reads the signature below, not the wrapped function's
    wrapper.__signature__ = inspect.Signature([*own, *made])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *made]}
    return wrapper


def given_on_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether the command's parameter ``name`` was typed (not left at its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"
