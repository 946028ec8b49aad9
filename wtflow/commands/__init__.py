"""One module per `wtflow` command; `wtflow/cli.py` is the parser and the error boundary.

list, run                   over wtfiles (wtfiles.py: discover and build them)
runs, show, logs            the read side of the record (record.py, output.py: shared helpers)
db, config                  the record's schema; the settings and where each came from
exit_codes                  what every command returns
"""
