"""The catalog (SQLAlchemy + Alembic) and the content-addressed blob store."""
