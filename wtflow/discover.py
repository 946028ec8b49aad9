"""The `@workflow` registry, and finding and loading wtfiles (`-f PATH` or a path argument)."""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

from wtflow.errors import UsageError, WtfileError, WtflowError, shown
from wtflow.model import Node, Workflow
from wtflow.params import Param, params_of

Built = Node | Workflow | Sequence[Node]
F = TypeVar("F", bound=Callable[[], Built])

DEFAULT_WTFILE = "wtfile.py"  # what -f means when not given

WTFILE_GLOB = "*wtfile*.py"  # what a folder given to -f loads: wtfile.py, ci_wtfile.py, ...


class DuplicateWorkflowError(WtfileError, RuntimeError):
    """Two `@workflow` functions have one name (a RuntimeError too, as older wtflow raised)."""


@dataclass(frozen=True)
class Registered:
    name: str
    func: Callable[..., Built]
    source: str  # "file.py:function" for messages
    explicit: bool = False  # named by @workflow("name") / @workflow(name=...), not by the function

    @property
    def params(self) -> tuple[Param, ...]:
        """The keyword parameters the function takes (`-p NAME=VALUE`)."""
        return params_of(self.func)

    def build(self, params: Mapping[str, Any] | None = None) -> Workflow:
        """Call the function and make its result a Workflow (user code runs here, not at import).

        A returned Workflow keeps its own name unless the decorator named the workflow; a list
        of nodes becomes the children of a root named after the workflow. Errors name the
        workflow and its source once."""
        try:
            return self._build(params or {})
        except WtflowError as e:
            text = str(e)
            for name in {self.name, _inner_name(text)} - {None}:
                head = f"workflow {name!r}: "
                if text.startswith(head):
                    raise type(e)(f"workflow {name!r} ({self.source}): {text[len(head) :]}") from None
            raise type(e)(f"workflow {self.name!r} ({self.source}): {text}") from None

    def _build(self, params: Mapping[str, Any]) -> Workflow:
        root = self.func(**params)
        if isinstance(root, Workflow):
            if self.explicit and root.name != self.name:
                return dataclasses.replace(root, name=self.name)
            return root
        if isinstance(root, list | tuple) and all(isinstance(n, Node) for n in root):
            return Workflow(name=self.name, root=Node(name=self.name, children=list(root)))
        if not isinstance(root, Node):
            raise WtfileError(
                f"workflow {self.name!r}: returned {shown(root)}, not a Node; "
                "return the root node (or a list of nodes, or a Workflow), e.g. return wtflow.Node(name='root', ...)"
            )
        return Workflow(name=self.name, root=root)


def _inner_name(text: str) -> str | None:
    # A returned Workflow names itself in its own errors ("workflow 'ci': ...").
    if text.startswith("workflow '") and "': " in text:
        return text[len("workflow '") : text.index("': ")]
    return None


REGISTRY: dict[str, Registered] = {}


@overload
def workflow(fn: F, /) -> F: ...
@overload
def workflow(name: str | None = None, /) -> Callable[[F], F]: ...
@overload
def workflow(*, name: str | None = None) -> Callable[[F], F]: ...


def workflow(fn: F | str | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
    """Register a function returning the root Node (or a list of nodes, or a Workflow) as a workflow
    (`@workflow`, `@workflow("name")`, `@workflow(name="name")`)."""
    if isinstance(fn, str):
        name, fn = fn, None

    def register(f: F) -> F:
        key = name or f.__name__.replace("_", "-")
        code = getattr(f, "__code__", None)
        source = f"{code.co_filename}:{f.__name__}" if code else f.__qualname__
        if key in REGISTRY:
            raise DuplicateWorkflowError(
                f"workflow {key!r} is defined twice ({REGISTRY[key].source} and {source}); "
                "give one of them another name with @workflow(name=...)"
            )
        REGISTRY[key] = Registered(key, f, source, explicit=name is not None)
        return f  # still a plain function: callable, importable, testable

    return register if fn is None else register(fn)


@dataclass(frozen=True)
class Discovery:
    """What `-f PATH` found: the workflows, the files of a folder that are not wtfiles, and the
    wtfiles that failed to import (when asked to keep going)."""

    workflows: dict[str, Registered]
    skipped: tuple[Path, ...] = ()
    broken: tuple[WtfileError, ...] = ()


def wtfiles(path: Path) -> tuple[list[Path], list[Path]]:
    """The files to load for `-f PATH`, and those of a folder left out.

    A file is loaded as it is. A folder loads the files below it named like `*wtfile*.py`
    (`wtfile.py`, `ci_wtfile.py`), never other modules: a script that runs a pipeline when
    imported must not run because it sits in the folder. Hidden entries below the folder are
    skipped; the folder itself may be anywhere (`.`, `..`, inside `.github/`)."""
    if not path.exists():
        raise WtfileError(f"wtfile {str(path)!r} does not exist; pass an existing file or folder with -f")
    if not path.is_dir():
        return [path], []
    chosen: list[Path] = []
    skipped: list[Path] = []
    for file in sorted(path.rglob("*.py")):
        below = file.relative_to(path).parts
        if any(part.startswith(".") for part in below):
            continue
        (chosen if fnmatch.fnmatchcase(file.name, WTFILE_GLOB) else skipped).append(file)
    return chosen, skipped


def load(path: Path) -> dict[str, Registered]:
    """Import the wtfile(s) at `path` and return the workflows they registered."""
    return find(path).workflows


def find(path: Path, *, keep_going: bool = False) -> Discovery:
    """Import the wtfile(s) at `path`; with `keep_going`, a wtfile that fails to import is kept
    in `broken` (its own workflows left out) and the others still load."""
    REGISTRY.clear()
    files, skipped = wtfiles(path)
    broken: list[WtfileError] = []
    for file in files:
        before = set(REGISTRY)
        try:
            _import(file)
        except WtfileError as e:
            if not keep_going:
                raise
            for key in set(REGISTRY) - before:
                del REGISTRY[key]
            broken.append(e)
    return Discovery(dict(REGISTRY), tuple(skipped), tuple(broken))


def lookup(found: Mapping[str, Registered], name: str) -> Registered | None:
    """The workflow called `name`: by its registered name, or by the name of the Workflow a
    function returns (which calls the functions that did not name their workflow)."""
    reg = found.get(name) or found.get(name.replace("_", "-"))
    if reg is not None:
        return reg
    for candidate in found.values():
        if candidate.explicit:
            continue
        try:
            built = candidate.build()
        except Exception:  # that workflow's own error is shown when it is the one asked for
            continue
        if built.name == name:
            return candidate
    return None


def positional_path(
    words: Sequence[str], file: str, *, default: str, names: bool = True
) -> tuple[str, list[str]]:
    """`wtflow run path/to/wtfile.py [NAME ...]`, `wtflow list path/to/folder`: the wtfile to load
    and the workflow names left.

    The first word is a path when it names an existing `.py` file or a folder; with `names`
    (for `run`), a bare folder name such as `ci` stays a workflow name while `-f` is given or a
    `./wtfile.py` is there to hold it (write `ci/` for the folder). Without `names` (for
    `list`), the word must be a path."""
    if not words:
        return file, []
    first, rest = words[0], list(words[1:])
    candidate = Path(first)
    is_file = candidate.suffix == ".py" and candidate.is_file()
    bare = os.sep not in first and first not in (".", "..")
    name_first = names and bare and (file != default or Path(default).is_file())
    is_folder = candidate.is_dir() and not name_first
    if not (is_file or is_folder):
        if names:
            return file, list(words)
        raise WtfileError(f"wtfile {first!r} does not exist; pass an existing .py file or folder")
    if file != default:
        raise UsageError(f"both -f {file!r} and the path {first!r} were given; pass one of them")
    return first, rest


def _import(file: Path) -> None:
    module_name = f"wtfile_{abs(hash(str(file.resolve())))}" if file.stem in sys.modules else file.stem
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise WtfileError(f"wtfile {str(file)!r} cannot be imported; is it a .py file?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # Its own folder first, as `python wtfile.py` would have it, so sibling modules import.
    sys.path.insert(0, str(file.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except WtfileError:
        raise
    except KeyboardInterrupt:  # Ctrl-C while a slow wtfile imports is an interruption, not its error
        del sys.modules[module_name]
        raise
    except BaseException as e:
        del sys.modules[module_name]
        raise WtfileError(f"wtfile {str(file)!r} failed to import:\n{_user_traceback(e, file)}") from None
    finally:
        sys.path.remove(str(file.parent.resolve()))


def _user_traceback(exc: BaseException, file: Path) -> str:
    """The traceback from the user's own code on: no frames of wtflow or importlib."""
    import traceback  # only for a broken wtfile: 4 ms (with textwrap) every command would pay

    tb = exc.__traceback__
    while tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve() != file.resolve():
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()
