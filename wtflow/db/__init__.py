"""The record of runs: tables, migrations, the recorder (an engine listener) and read queries."""
