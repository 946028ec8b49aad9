"""One module per `wtflow` command; `wtflow/cli.py` is the parser and the error boundary."""
