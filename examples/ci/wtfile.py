"""A CI pipeline: lint and tests at the same time, then the build if both passed.

wtflow -f examples/ci/wtfile.py run            # or: cd examples/ci && wtflow run
wtflow -f examples/ci/wtfile.py run --only 'checks/*'
"""

import sys
from pathlib import Path

import wtflow

HERE = Path(__file__).parent


def unit_tests() -> None:
    sys.path.insert(0, str(HERE))
    from app import slug

    cases = {"Hello, World!": "hello-world", "  wtflow  ": "wtflow", "a_b c": "a-b-c"}
    for title, expected in cases.items():
        assert slug(title) == expected, f"slug({title!r}) == {slug(title)!r}, expected {expected!r}"
    print(f"{len(cases)} tests passed")


@wtflow.workflow
def ci() -> wtflow.Node:
    python = sys.executable
    return wtflow.Node(
        name="ci",
        children=[
            wtflow.Node(
                name="checks",
                parallel=True,  # lint and tests run at the same time
                children=[
                    # A list runs the program directly, without a shell.
                    wtflow.Node(
                        name="lint",
                        executable=wtflow.Command([python, "-m", "py_compile", str(HERE / "app.py")]),
                    ),
                    wtflow.Node(name="tests", executable=wtflow.PyFunc(func=unit_tests)),
                ],
            ),
            # Runs only when every check passed; the archive lands in ./dist of the current folder.
            wtflow.Node(
                name="build",
                executable=wtflow.Command(
                    f"mkdir -p dist && {python} -m zipfile -c dist/app.zip {HERE / 'app.py'} && echo built dist/app.zip"
                ),
            ),
        ],
    )
