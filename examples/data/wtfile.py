"""A data pipeline: each step reads the output of the one before from its artifact file.

wtflow -f examples/data/wtfile.py run
"""

import csv
import io
import json

import wtflow

SALES = "region,amount\nnorth,120\nsouth,80\nnorth,45\neast,200\nsouth,35\n"


def totals(extracted: wtflow.Artifact) -> None:
    """Sum the CSV the `extract` node printed; print the result as JSON."""
    sums: dict[str, int] = {}
    for row in csv.DictReader(io.StringIO(extracted.text())):
        sums[row["region"]] = sums.get(row["region"], 0) + int(row["amount"])
    print(json.dumps(sums, sort_keys=True))


def report(summed: wtflow.Artifact) -> None:
    sums = json.loads(summed.data)
    best = max(sums, key=sums.get)
    for region, amount in sorted(sums.items()):
        print(f"{region:>6}: {amount:5d}")
    print(f"best region: {best}")


@wtflow.workflow
def sales_report() -> wtflow.Node:
    extract = wtflow.Node(name="extract", executable=wtflow.Command(f"printf '{SALES}'"))
    transform = wtflow.Node(
        name="transform", executable=wtflow.PyFunc(func=totals, args=(extract.stdout_artifact,))
    )
    load = wtflow.Node(
        name="report", executable=wtflow.PyFunc(func=report, args=(transform.stdout_artifact,))
    )
    return wtflow.Node(name="pipeline", children=[extract, transform, load])
