"""`Node(when=...)`: decided when the node's turn comes, from a read-only view of the run so far.

    Node(name="deploy", when=lambda run: run.status(tests) == "succeeded" and "deploy" in run.flags)

`evaluate` calls the condition and says what it decided; an exception, or a value that is no
answer (a coroutine), is not wtflow's to raise: the node fails, with the user's traceback in
its stderr.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wtflow.errors import WtflowError
from wtflow.model import Node, Workflow
from wtflow.runstate import RunState
from wtflow.status import Status

_NO_DEFAULT: Any = object()


class RunView:
    """What a `when=` callable sees: each node's status and result so far, and the run's flags.

    Read-only: it answers questions and changes nothing."""

    __slots__ = ("_flags", "_indices", "_state", "_workflow")

    def __init__(self, workflow: Workflow, state: RunState, flags: frozenset[str]) -> None:
        self._workflow = workflow
        self._state = state
        self._flags = flags
        self._indices: dict[int, int] | None = None

    @property
    def flags(self) -> frozenset[str]:
        """The run's feature flags (`--flag NAME`, `WTFLOW_FLAGS`, `[run] flags`)."""
        return self._flags

    def status(self, node: Node) -> Status:
        """The node's status now: `succeeded`, `failed`, `skipped`, ... (`pending` if not yet run)."""
        return self._state[self._index(node)].status

    def result(self, node: Node, default: Any = _NO_DEFAULT) -> Any:
        """What the node's PyFunc returned; `default` (if given) when it returned nothing, did not
        run or has not run yet."""
        done = self._state[self._index(node)]
        try:
            if done.attempts == 0 or not done.status.is_final:
                # A handle still pointing at an earlier run's file says nothing of this run.
                raise WtflowError(node.name)
            return node.result_artifact.value
        except (WtflowError, OSError, ValueError):
            if default is not _NO_DEFAULT:
                return default
            raise WtflowError(
                f"node {node.name!r} has no result ({self.status(node)}): only a PyFunc that ran and "
                "returned a value has one; pass a default, e.g. run.result(node, default=None)"
            ) from None

    def _index(self, node: Node) -> int:
        if self._indices is None:
            self._indices = {id(p.node): p.index for p in self._workflow.placed}
        index = self._indices.get(id(node))
        if index is None:
            raise WtflowError(
                f"node {getattr(node, 'name', node)!r} is not in workflow {self._workflow.name!r}; "
                "ask about a node of this tree"
            )
        return index

    def __repr__(self) -> str:
        return f"RunView(workflow={self._workflow.name!r}, flags={sorted(self._flags)})"


@dataclass(frozen=True, slots=True)
class Condition:
    """What a `when=` decided: run the node or not, or the traceback of a condition that failed."""

    holds: bool
    error: str | None = None


def evaluate(when: bool | Callable[[RunView], object], view: RunView) -> Condition:
    """Call the condition (a bool is its own answer)."""
    if isinstance(when, bool):
        return Condition(when)
    try:
        value = when(view)
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()  # never awaited, and never to warn about it
            raise TypeError(f"when={when!r} returned an awaitable; a condition is a plain function")
        return Condition(bool(value))
    except Exception as e:
        # The user's frames only: this function's own says nothing about their condition.
        shown = traceback.format_exception(type(e), e, e.__traceback__.tb_next if e.__traceback__ else None)
        return Condition(False, "".join(shown))
