"""Data between nodes: a result handed on, a declared file kept with the run, an artifact in argv.

wtflow -f examples/results/wtfile.py run
"""

import json
import pathlib

import wtflow


def measure() -> dict[str, int]:
    """The returned dict is this node's result (saved as result.json)."""
    return {"north": 165, "south": 115, "east": 200}


def rank(measured: wtflow.Artifact) -> list[str]:
    totals = measured.value
    return sorted(totals, key=totals.get, reverse=True)


def write_report(ranked: wtflow.Artifact) -> None:
    pathlib.Path("out").mkdir(exist_ok=True)
    pathlib.Path("out/report.json").write_text(json.dumps({"ranking": ranked.value}))


@wtflow.workflow
def results() -> wtflow.Node:
    measured = wtflow.Node(name="measure", executable=wtflow.PyFunc(func=measure))
    ranked = wtflow.Node(name="rank", executable=wtflow.PyFunc(func=rank, args=(measured.result_artifact,)))
    report = wtflow.Artifact("report", file_path="out/report.json")
    written = wtflow.Node(
        name="report",
        executable=wtflow.PyFunc(func=write_report, args=(ranked.result_artifact,)),
        artifacts=[report],
    )
    shown = wtflow.Node(name="show", executable=wtflow.Command(["cat", report]))
    return wtflow.Node(name="results", children=[measured, ranked, written, shown])
