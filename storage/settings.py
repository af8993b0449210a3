"""Settings read from the environment.

Four variables steer a deployment (README, "Configuration"):

- ``DREAMCRAWL_HOME``: the data folder (blob store, SQLite catalog, converted weights);
  defaults to ``$XDG_DATA_HOME/dreamcrawl`` (``~/.local/share/dreamcrawl``).
- ``DREAMCRAWL_DB_URL``: any SQLAlchemy URL; defaults to SQLite in the data folder.
- ``DREAMCRAWL_WEIGHTS``: a weights file that overrides every other source.
- ``DREAMCRAWL_BLOBS``: where the blobs live: ``s3://bucket/prefix`` for S3-compatible
  object storage (endpoint and credentials from the standard AWS variables), or a
  folder; defaults to ``objects/`` in the data folder.

One more is optional: ``DREAMCRAWL_SQL_URL``, the URL ``catalog sql`` connects with
instead of ``DREAMCRAWL_DB_URL`` (a role that may only read; docs/catalog.md).

Settings are read when asked for, never at import time, so tests and flows can point
one process at several data folders.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from platformdirs import user_data_path

ENV_HOME = "DREAMCRAWL_HOME"
ENV_DB_URL = "DREAMCRAWL_DB_URL"
ENV_WEIGHTS = "DREAMCRAWL_WEIGHTS"
ENV_BLOBS = "DREAMCRAWL_BLOBS"
ENV_SQL_URL = "DREAMCRAWL_SQL_URL"


@dataclass(frozen=True)
class Settings:
    """Where dreamcrawl keeps its data, and which catalog and weights it uses."""

    home: Path
    db_url: str
    weights_override: Path | None = None
    blobs: str = ""  # DREAMCRAWL_BLOBS as given ("" = the local default)
    sql_url: str = ""  # DREAMCRAWL_SQL_URL ("" = catalog sql uses db_url)

    @property
    def blobs_url(self) -> str | None:
        """The ``s3://`` URL of the blob store, or None for a local folder."""
        return self.blobs if self.blobs.startswith("s3://") else None

    @property
    def objects_dir(self) -> Path:
        """Root of the local content-addressed blob store (unused with S3 blobs)."""
        if self.blobs and self.blobs_url is None:
            return Path(self.blobs).expanduser().absolute()
        return self.home / "objects"

    @property
    def weights_dir(self) -> Path:
        """Converted and cached model weights."""
        return self.home / "weights"

    @property
    def runs_dir(self) -> Path:
        """Per-run scratch state (crawl job folders, temporary files)."""
        return self.home / "runs"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        home_value = env.get(ENV_HOME, "").strip()
        home = Path(home_value).expanduser() if home_value else user_data_path("dreamcrawl")
        home = home.absolute()
        db_url = env.get(ENV_DB_URL, "").strip() or f"sqlite:///{home / 'catalog.sqlite'}"
        weights_value = env.get(ENV_WEIGHTS, "").strip()
        weights = Path(weights_value).expanduser().absolute() if weights_value else None
        blobs = env.get(ENV_BLOBS, "").strip()
        sql_url = env.get(ENV_SQL_URL, "").strip()
        return cls(home=home, db_url=db_url, weights_override=weights, blobs=blobs, sql_url=sql_url)

    def on_this_machine(self) -> Settings:
        """These settings' catalog and blob store, with this process's own data folder
        and weights: what a task shipped to another machine (a Dask worker) uses, so
        that the worker shares nothing with the flow but the catalog and the store."""
        here = Settings.from_env()
        return replace(here, db_url=self.db_url, blobs=self.blobs or str(self.objects_dir))

    def ensure_dirs(self) -> None:
        """Create the data folder and its sub-folders if they are missing."""
        folders = [self.home, self.weights_dir, self.runs_dir]
        if self.blobs_url is None:
            folders.append(self.objects_dir)
        for path in folders:
            path.mkdir(parents=True, exist_ok=True)


def get_settings() -> Settings:
    """The settings of this process, from its environment."""
    return Settings.from_env()
