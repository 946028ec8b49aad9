"""Workflow parameters: the keyword parameters of a `@workflow` function, set from the command line
(`-p env=prod`) or the environment (`WTFLOW_PARAM_ENV=prod`), parsed by their type hints (pure).

    @wtflow.workflow
    def deploy(env: Literal["dev", "prod"] = "dev", replicas: int = 1) -> wtflow.Node: ...
"""

from __future__ import annotations

import enum
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wtflow.errors import UsageError

ENV_PREFIX = "WTFLOW_PARAM_"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: its name, its type hint, and its default (`inspect.Parameter.empty` if none)."""

    name: str
    hint: Any
    default: Any

    @property
    def type_text(self) -> str:
        """The hint as a person reads it: `int`, `Literal['dev', 'prod']`, `Color (red, blue)`."""
        if typing.get_origin(self.hint) is typing.Literal:
            return f"one of {', '.join(repr(v) for v in typing.get_args(self.hint))}"
        if isinstance(self.hint, type) and issubclass(self.hint, enum.Enum):
            return f"{self.hint.__name__} ({', '.join(m.name for m in self.hint)})"
        if typing.get_origin(self.hint) is not None:  # list[int], not list
            return str(self.hint)
        return getattr(self.hint, "__name__", str(self.hint))

    def describe(self) -> str:
        """`name: type = default`, as `wtflow list` shows it."""
        shown = "" if self.default is inspect.Parameter.empty else f" = {_plain(self.default)!r}"
        return f"{self.name}: {self.type_text}{shown}"

    def parse(self, raw: str, *, source: str) -> Any:
        hint, problem = self.hint, None
        if typing.get_origin(hint) is typing.Literal:
            for choice in typing.get_args(hint):
                if str(choice) == raw or (
                    isinstance(choice, bool) and raw.lower() in (_TRUE if choice else _FALSE)
                ):
                    return choice
            problem = f"is not {self.type_text}"
        elif hint is bool:
            if raw.strip().lower() in _TRUE | _FALSE:
                return raw.strip().lower() in _TRUE
            problem = "is not a bool; use one of true, false, 1, 0, yes, no"
        elif isinstance(hint, type) and issubclass(hint, enum.Enum):
            for member in hint:
                if raw in (member.name, str(member.value)):
                    return member
            problem = f"is not a {self.type_text}"
        elif hint in (int, float):
            try:
                return hint(raw)
            except ValueError:
                problem = f"is not a{'n' if hint is int else ''} {hint.__name__}"
        elif hint is Path:
            return Path(raw)
        elif hint in (str, Any, object):
            return raw
        else:  # handing it the text would run the workflow with a str where it expects a list...
            raise UsageError(
                f"parameter {self.name} ({self.type_text}) cannot be set by {source}: only a str, int, "
                "float, bool, Path, Enum or Literal parameter can; give it one of those types"
            )
        raise UsageError(f"parameter {self.name} ({self.type_text}) {source}={raw!r} {problem}")


def params_of(func: Callable[..., Any]) -> tuple[Param, ...]:
    """The keyword parameters a workflow function takes."""
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # an unresolvable annotation: take the parameters as strings
        hints = {}
    found = []
    for p in inspect.signature(func).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        hint = hints.get(p.name, str if p.default is p.empty or p.default is None else type(p.default))
        if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            args = [a for a in typing.get_args(hint) if a is not type(None)]  # Optional[int]: int
            hint = args[0] if len(args) == 1 else str
        found.append(Param(p.name, hint, p.default))
    return tuple(found)


def values_for(
    workflow: str, params: tuple[Param, ...], given: Mapping[str, str], environ: Mapping[str, str]
) -> dict[str, Any]:
    """The arguments to call the workflow function with: `-p` values over `WTFLOW_PARAM_<NAME>`
    ones, each parsed by its hint; a required parameter nobody set is a usage error."""
    values: dict[str, Any] = {}
    for p in params:
        variable = ENV_PREFIX + p.name.upper()
        if p.name in given:
            values[p.name] = p.parse(given[p.name], source=f"-p {p.name}")
        elif variable in environ:
            values[p.name] = p.parse(environ[variable], source=variable)
        elif p.default is inspect.Parameter.empty:
            raise UsageError(
                f"parameter {p.name} ({p.type_text}) of workflow {workflow!r} has no default; "
                f"set it with -p {p.name}=VALUE or {variable}"
            )
    return values


def split(pairs: list[str]) -> dict[str, str]:
    """`-p NAME=VALUE` flags as a dict; a flag without `=` is a usage error."""
    given = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"-p {pair!r} is not NAME=VALUE; use e.g. -p env=prod")
        given[name.strip().replace("-", "_")] = value
    return given


def check_known(given: Mapping[str, str], taken: Mapping[str, tuple[Param, ...]]) -> None:
    """A `-p` that no chosen workflow takes is a usage error naming what they take."""
    known = {p.name: p for params in taken.values() for p in params}
    for name in given:
        if name not in known:
            listed = ", ".join(p.describe() for p in known.values()) or "none"
            raise UsageError(
                f"parameter {name} is not a parameter of {', '.join(taken)}; parameters: {listed}"
            )


def plain_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values as JSON holds them, for the record: an Enum by its name, a Path as text."""
    return {k: str(v) if isinstance(v, Path) else _plain(v) for k, v in values.items()}


def _plain(value: Any) -> Any:
    return value.name if isinstance(value, enum.Enum) else value
