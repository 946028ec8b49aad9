"""Alembic environment: migrations run on the connection wtflow hands over (see wtflow.db.schema)."""

from __future__ import annotations

from alembic import context

from wtflow.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` run by hand from a checkout: use the URL it was given
    from sqlalchemy import create_engine

    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "sqlite:///.wtflow/wtflow.db")
    connection = engine.connect()

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
