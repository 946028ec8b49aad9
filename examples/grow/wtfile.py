"""Dependencies across branches, and a tree that grows while it runs.

wtflow -f examples/grow/wtfile.py run deliver            # deploy waits for build in another branch: exit 0
wtflow -f examples/grow/wtfile.py run deliver -p fail=1  # build fails: deploy and notify are skipped: exit 1
wtflow -f examples/grow/wtfile.py run shards             # plan returns the shards, which then run: exit 0
wtflow -f examples/grow/wtfile.py run shards --dry-run   # plan is marked [may grow children]
"""

import wtflow


@wtflow.workflow
def deliver(fail: int = 0) -> wtflow.Node:
    build = wtflow.Node(name="build", executable=wtflow.Command(f"echo built app-1.0; exit {fail}"))
    docs = wtflow.Node(name="docs", executable=wtflow.Command("echo docs built"))
    # Reading build's stdout is a wait for build, as after= is.
    deploy = wtflow.Node(name="deploy", executable=wtflow.Command(["cat", build.stdout_artifact]))
    notify = wtflow.Node(name="notify", executable=wtflow.Command("echo released"))
    [deploy, docs] >> notify  # notify waits for both
    return wtflow.Node(
        name="deliver",
        parallel=True,
        children=[
            wtflow.Node(name="ship", children=[deploy, notify]),
            wtflow.Node(name="make", parallel=True, children=[build, docs]),
        ],
    )


def test_shard(n: int, of: int) -> None:
    print(f"shard {n + 1} of {of}: ok")


def plan(count: int) -> list[wtflow.Node]:
    """Decide at run time how many shards there are; they run as this node's children."""
    print(f"splitting the tests into {count} shards")
    return [
        wtflow.Node(name=f"shard-{n}", executable=wtflow.PyFunc(func=test_shard, args=(n, count)))
        for n in range(count)
    ]


@wtflow.workflow
def shards(count: int = 4) -> wtflow.Node:
    return wtflow.Node(
        name="tests",
        children=[
            wtflow.Node(name="plan", parallel=True, executable=wtflow.PyFunc(func=plan, args=(count,))),
            wtflow.Node(name="summary", executable=wtflow.Command("echo all shards ran")),
        ],
    )
