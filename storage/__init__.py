"""The catalog (SQLAlchemy + Alembic) and the content-addressed blob store.

For a notebook::

    import storage
    catalog = storage.open_catalog()           # DREAMCRAWL_HOME / DREAMCRAWL_DB_URL
    frame = storage.to_pandas("v_stylized")    # needs the 'analysis' extra (pandas)

Settings, the base error type and the version live here too, at the bottom of the
layers, so every package above can use them.
"""

from storage.analysis import to_pandas
from storage.db import Catalog, open_catalog
from storage.errors import UserError
from storage.settings import Settings, get_settings
from storage.version import __version__

__all__ = [
    "Catalog",
    "Settings",
    "UserError",
    "__version__",
    "get_settings",
    "open_catalog",
    "to_pandas",
]
