"""The catalog's documented views as pandas DataFrames, for notebooks.

``to_pandas("v_stylized")`` reads one of the views that docs/catalog.md documents. pandas
is optional (``pip install 'dreamcrawl[analysis]'``); without it the call says so in one
line instead of failing at import time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, table

from storage.db import Catalog, open_catalog
from storage.errors import UserError
from storage.views import VIEWS


def to_pandas(view: str, catalog: Catalog | None = None, *, limit: int | None = None) -> Any:
    """The rows of ``view`` (e.g. ``v_stylized``) as a DataFrame."""
    try:
        import pandas as pd
    except ImportError:
        raise UserError(
            "to_pandas needs pandas: pip install 'dreamcrawl[analysis]' (or pandas)"
        ) from None
    if view not in VIEWS:
        raise UserError(f"unknown view '{view}'; views: {', '.join(sorted(VIEWS))}")
    catalog = catalog or open_catalog()
    query = select("*").select_from(table(view))
    if limit is not None:
        query = query.limit(limit)
    with catalog.engine.connect() as connection:
        return pd.read_sql(query, connection)
