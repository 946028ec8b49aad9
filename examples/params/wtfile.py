"""A workflow with parameters, parsed by their type hints.

wtflow -f examples/params/wtfile.py run deploy -p env=prod -p replicas=3
WTFLOW_PARAM_ENV=prod wtflow -f examples/params/wtfile.py run deploy
"""

from typing import Literal

import wtflow


@wtflow.workflow
def deploy(env: Literal["dev", "prod"] = "dev", replicas: int = 1, dry_run: bool = False) -> wtflow.Node:
    say = "would deploy" if dry_run else "deploying"
    return wtflow.Node(
        name="deploy",
        children=[
            wtflow.Node(name=f"replica-{i}", executable=wtflow.Command(["echo", f"{say} {env} #{i}"]))
            for i in range(1, replicas + 1)
        ],
    )
