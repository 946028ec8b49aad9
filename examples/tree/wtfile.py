"""A richer tree: options that hold for a subtree, and a fail-fast group.

wtflow -f examples/tree/wtfile.py run suite       # group rules, a budget and a cap: exit 0
wtflow -f examples/tree/wtfile.py run fail-fast   # one check fails, the slow one is stopped: exit 1
wtflow -f examples/tree/wtfile.py run cleanup     # the tests fail, the teardown still runs: exit 1
wtflow -f examples/tree/wtfile.py run cleanup --deadline 1   # ... also when the deadline stops the run
"""

import wtflow


def shard(n: int) -> wtflow.Node:
    return wtflow.Node(name=f"shard-{n}", executable=wtflow.Command(f'echo "shard {n} on $STAGE"'))


@wtflow.workflow
def suite() -> wtflow.Node:
    return wtflow.Node(
        name="suite",
        env={"STAGE": "ci"},  # every node below sees STAGE=ci
        children=[
            wtflow.Node(
                name="shards",
                parallel=True,
                timeout=120,  # a budget for the whole group, not per shard
                max_parallel=2,  # two shards at a time, whatever the run's -j
                retries=1,  # each shard is retried once
                retry_delay=0.1,
                children=[shard(n) for n in range(4)],
            ),
            wtflow.Node(
                name="report",
                executable=wtflow.Command('echo "report for $STAGE ($LEVEL)"'),
                env={"LEVEL": "full"},  # merged with the group's STAGE
            ),
        ],
    )


@wtflow.workflow(name="fail-fast")
def fail_fast() -> wtflow.Node:
    return wtflow.Node(
        name="checks",
        parallel=True,
        fail_fast=True,  # the first failure stops the others
        children=[
            wtflow.Node(name="slow", executable=wtflow.Command("echo started; sleep 60")),
            wtflow.Node(
                name="lint", executable=wtflow.Command("sleep 0.2; echo 'E501 line too long' >&2; exit 1")
            ),
        ],
    )


@wtflow.workflow
def cleanup() -> wtflow.Node:
    return wtflow.Node(
        name="integration",
        children=[
            wtflow.Node(name="start-db", executable=wtflow.Command("echo database up")),
            wtflow.Node(name="tests", executable=wtflow.Command("sleep 0.1; echo '1 failed' >&2; exit 1")),
            wtflow.Node(name="report", executable=wtflow.Command("echo never runs")),
            # Runs after a failure, past a deadline and after Ctrl-C; bounded by its own timeout.
            wtflow.Node(
                name="stop-db", executable=wtflow.Command("echo database down"), always=True, timeout=30
            ),
        ],
    )
