"""A richer tree: options that hold for a subtree, and a fail-fast group.

wtflow -f examples/tree/wtfile.py run suite       # group rules, a budget and a cap: exit 0
wtflow -f examples/tree/wtfile.py run fail-fast   # one check fails, the slow one is stopped: exit 1
wtflow -f examples/tree/wtfile.py run cleanup     # the tests fail, the teardown still runs: exit 1
wtflow -f examples/tree/wtfile.py run cleanup --deadline 1   # ... also when the deadline stops the run
wtflow -f examples/tree/wtfile.py run release     # no deploy flag: deploy is skipped (condition false)
wtflow -f examples/tree/wtfile.py run release --flag deploy   # the deploy runs, the canary first
wtflow -f examples/tree/wtfile.py run release --skip-tag slow # without the slow tests
wtflow -f examples/tree/wtfile.py list --tags     # each tag and the nodes that set it
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


def build_wheel() -> dict[str, object]:
    print("built dist/app-1.0.whl")
    return {"version": "1.0", "changed": True}


@wtflow.workflow
def release() -> wtflow.Node:
    build = wtflow.Node(name="build", executable=wtflow.PyFunc(func=build_wheel), tags={"fast"})
    tests = wtflow.Node(
        name="tests",
        parallel=True,
        children=[
            wtflow.Node(name="unit", executable=wtflow.Command("echo 12 passed"), tags={"fast"}),
            wtflow.Node(name="e2e", executable=wtflow.Command("echo 3 passed"), tags={"slow"}),
        ],
    )
    return wtflow.Node(
        name="release",
        children=[
            build,
            tests,
            wtflow.Node(
                name="deploy",
                parallel=True,
                max_parallel=1,  # one region at a time: the canary goes first
                # Decided when its turn comes: the flag, and what the build returned.
                when=lambda run: "deploy" in run.flags and run.result(build)["changed"],
                children=[
                    wtflow.Node(name="eu", executable=wtflow.Command("echo deploy eu")),
                    wtflow.Node(name="canary", executable=wtflow.Command("echo deploy canary"), priority=10),
                ],
            ),
        ],
    )
