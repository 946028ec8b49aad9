"""The record of runs.

tables.py, migrations/      the schema (SQLAlchemy Core) and its Alembic revisions
schema.py, recorder.py      the write side: open and upgrade, mark crashed runs; the recorder
                            (an engine listener writing from one thread)
read.py, shapes.py          the read side, which never writes: typed queries, JSON shapes
"""
