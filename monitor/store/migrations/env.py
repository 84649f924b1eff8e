"""Alembic environment: runs migrations on the connection the app hands over.

``monitor.store.engine.migrate`` passes an open connection in ``config.attributes["connection"]``;
the ``alembic`` command line is not needed to run the service.
"""

from alembic import context

from monitor.store.schema import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through monitor.store.engine.migrate (no connection given)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # ALTER support on SQLite
)
with context.begin_transaction():
    context.run_migrations()
