"""Alembic environment: migrates the SQLite file named by the caller (see db.upgrade_schema)."""

from alembic import context

from backupmanager.db import make_engine
from backupmanager.models import Base

database_path = context.config.attributes["database_path"]
engine = make_engine(database_path)
with engine.connect() as connection:
    # render_as_batch: SQLite cannot ALTER most things, batch mode rebuilds tables safely.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
engine.dispose()
