"""The performance harness: every figure is wtflow's time over a baseline's, measured in the same run.

    uv run python -m benchmarks [--quick] [--only NAME ...] [--reps N] [--out DIR]

Each workload runs its baseline (xargs, a bash loop, `cmd > file`, `os.fork`) and wtflow
alternately, several repetitions each, and reports median, min and max of both and the ratio of
the medians. Results are printed as a table and written as JSON under benchmarks/results/.
"""
