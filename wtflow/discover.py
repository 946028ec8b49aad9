"""The `@workflow` registry and loading of wtfiles."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, overload

from wtflow.errors import WtfileError
from wtflow.model import Node, Workflow

F = TypeVar("F", bound=Callable[[], Node | Workflow])


@dataclass(frozen=True)
class Registered:
    name: str
    func: Callable[[], Node | Workflow]
    source: str  # "file.py:function" for messages

    def build(self) -> Workflow:
        """Call the function and wrap the root it returns (user code runs here, not at import).

        A returned Workflow is taken as it is, its own name included."""
        root = self.func()
        if isinstance(root, Workflow):
            return root
        if not isinstance(root, Node):
            raise WtfileError(
                f"workflow {self.name!r} ({self.source}) returned {root!r}, not a Node; "
                "return the root node (or a Workflow), e.g. return wtflow.Node(name='root', ...)"
            )
        return Workflow(name=self.name, root=root)


REGISTRY: dict[str, Registered] = {}


@overload
def workflow(fn: F, /) -> F: ...
@overload
def workflow(name: str | None = None, /) -> Callable[[F], F]: ...
@overload
def workflow(*, name: str | None = None) -> Callable[[F], F]: ...


def workflow(fn: F | str | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
    """Register a function returning the root Node as a workflow (`@workflow`, `@workflow("name")`)."""
    if isinstance(fn, str):
        name, fn = fn, None

    def register(f: F) -> F:
        key = name or f.__name__.replace("_", "-")
        code = getattr(f, "__code__", None)
        source = f"{code.co_filename}:{f.__name__}" if code else f.__qualname__
        if key in REGISTRY:
            raise WtfileError(
                f"workflow {key!r} is defined twice ({REGISTRY[key].source} and {source}); "
                "give one of them another name with @workflow(name=...)"
            )
        REGISTRY[key] = Registered(key, f, source)
        return f  # still a plain function: callable, importable, testable

    return register if fn is None else register(fn)


def wtfiles(path: Path) -> list[Path]:
    """The files to load for `-f PATH`: the file itself, or every *.py below a folder."""
    if not path.exists():
        raise WtfileError(f"wtfile {str(path)!r} does not exist; pass an existing file or folder with -f")
    if path.is_dir():
        return sorted(p for p in path.rglob("*.py") if not any(part.startswith(".") for part in p.parts))
    return [path]


def load(path: Path) -> dict[str, Registered]:
    """Import the wtfile(s) at `path` and return the workflows they registered."""
    REGISTRY.clear()
    for file in wtfiles(path):
        _import(file)
    return dict(REGISTRY)


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
    tb = exc.__traceback__
    while tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve() != file.resolve():
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()
