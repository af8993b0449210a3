"""Alembic environment: runs migrations on the catalog's engine.

Driven from code (storage.migrate), the engine is passed in. Run by the ``alembic``
command from the repository (alembic.ini), it is the catalog of ``DREAMCRAWL_DB_URL``
(default: SQLite in ``DREAMCRAWL_HOME``), unless alembic.ini sets ``sqlalchemy.url``.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Engine

from storage.db import make_engine
from storage.models import Base
from storage.settings import get_settings

config = context.config
target_metadata = Base.metadata
if config.config_file_name is not None and config.attributes.get("engine") is None:
    # The alembic command: its log lines ("Running upgrade 0001 -> 0002") on stderr.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def catalog_engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine
    # dreamcrawl's connection settings (psycopg 3 for postgresql://, SQLite's timeout).
    return make_engine(config.get_main_option("sqlalchemy.url") or get_settings().db_url)


def run_migrations_online() -> None:
    engine = catalog_engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things in place: batch mode copies the table.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("dreamcrawl migrations run online only (no --sql): use `alembic upgrade head`")
run_migrations_online()
