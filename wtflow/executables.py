"""What a node runs: a shell `Command` or a Python `PyFunc` (what, never how)."""

from __future__ import annotations

import inspect
import os
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from wtflow.errors import WorkflowError, shown

_NODE_WORD = re.compile(r"\bNode\b")


def check_timeout(value: object, *, owner: str) -> None:
    """Reject a timeout that is not a positive number of seconds (shared with Node)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise WorkflowError(
            f"{owner}.timeout={value!r} is not a positive number of seconds; "
            "use e.g. timeout=30, or leave it out for no limit"
        )


@dataclass(eq=False)
class Command:
    """A shell command (`/bin/sh -c "..."`) or, given a list, a program run without a shell.

    A list may hold artifacts (`Command(["wc", "-l", n1.stdout_artifact])`): each is replaced
    by its file's path when the node starts."""

    cmd: str | Sequence[str | os.PathLike[str]]
    timeout: float | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        cmd: object = self.cmd
        if isinstance(cmd, str):
            if not cmd.strip():
                raise WorkflowError(
                    f"Command(cmd={self.cmd!r}) has nothing to run; "
                    "pass a shell command, e.g. Command('make test')"
                )
        elif isinstance(cmd, Sequence) and cmd and all(isinstance(a, str | os.PathLike) for a in cmd):
            self.cmd = tuple(cmd)
        else:
            raise WorkflowError(
                f"Command(cmd={self.cmd!r}) is not a shell string or a non-empty list of strings; "
                "use e.g. Command('make test') or Command(['make', 'test', n1.stdout_artifact])"
            )
        if any(isinstance(a, str) and "\0" in a for a in ([cmd] if isinstance(cmd, str) else cmd)):
            # The OS cuts an argument at NUL: refused here, not when the run reaches the node.
            raise WorkflowError(
                f"Command(cmd={shown(self.cmd)}) holds a NUL byte, which no command line can carry; remove it"
            )
        check_timeout(self.timeout, owner="Command")

    @property
    def argv(self) -> list[str]:
        """The program and its arguments, as the executor starts them."""
        if isinstance(self.cmd, str):
            return ["/bin/sh", "-c", self.cmd]
        return [os.fspath(a) for a in self.cmd]

    def describe(self) -> str:
        """The command as a person would type it (an artifact as `<stdout of 'n1'>`)."""
        text = (
            self.cmd
            if isinstance(self.cmd, str)
            else shlex.join(a if isinstance(a, str) else _placeholder(a) for a in self.cmd)
        )
        # A file name that is not UTF-8 (os.listdir gives it as surrogates) runs as its bytes,
        # and is shown and recorded as `\xff`: no text store takes a lone surrogate.
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")

    def __repr__(self) -> str:
        return f"Command(cmd={self.cmd!r})"


def _placeholder(value: os.PathLike[str]) -> str:
    # An artifact's path is known only once its node ran: shown by whose output it is.
    name, node = getattr(value, "name", None), getattr(value, "node_name", None)
    return f"<{name} of {node!r}>" if name is not None else os.fspath(value)


@dataclass(eq=False)
class PyFunc:
    """A Python function (sync or async) run in a child process with its args and kwargs."""

    func: Callable[..., Any]
    args: tuple[Any, ...] = field(default_factory=tuple, kw_only=True)
    kwargs: dict[str, Any] = field(default_factory=dict, kw_only=True)
    timeout: float | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if not callable(self.func):
            raise WorkflowError(
                f"PyFunc(func={self.func!r}) is not callable; pass a function, e.g. PyFunc(func=build)"
            )
        if not isinstance(self.args, tuple | list):
            raise WorkflowError(
                f"PyFunc(args={self.args!r}) is not a tuple; use e.g. args=(value,) for one argument"
            )
        self.args = tuple(self.args)
        if not isinstance(self.kwargs, dict):
            raise WorkflowError(f"PyFunc(kwargs={self.kwargs!r}) is not a dict; use e.g. kwargs={{'n': 1}}")
        check_timeout(self.timeout, owner="PyFunc")

    @property
    def may_grow(self) -> bool:
        """Whether its return annotation names Node (`-> Node`, `-> list[wtflow.Node]`): what
        `--dry-run` marks as a node that may grow children. Any PyFunc may; these say so."""
        try:
            annotation = inspect.signature(self.func).return_annotation
        except (TypeError, ValueError):  # a builtin, or a callable with no signature to read
            return False
        if annotation is inspect.Signature.empty:
            return False
        text = annotation if isinstance(annotation, str) else repr(annotation)  # "list[Node]", "<class ...>"
        return _NODE_WORD.search(text) is not None

    def describe(self) -> str:
        """The function's qualified name, `module.qualname`."""
        module = getattr(self.func, "__module__", None) or "?"
        name = getattr(self.func, "__qualname__", None) or repr(self.func)
        return f"{module}.{name}"

    def __repr__(self) -> str:
        return f"PyFunc(<{self.describe()}>)"


Executable = Command | PyFunc
