"""The schema revisions this wtflow knows, newest last: light enough for the recorder to check
a SQLite record before a run starts without importing SQLAlchemy (a test keeps them in step with
migrations/versions)."""

KNOWN = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010")
HEAD = KNOWN[-1]
