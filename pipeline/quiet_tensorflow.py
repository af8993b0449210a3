"""Keep TensorFlow's C++ log lines off the terminal unless asked for (``-v``).

TensorFlow writes absl-formatted lines to stderr while it loads and when it looks for a
GPU: ``I0000 … oneDNN custom operations are on``, ``I0000 … Could not find cuda
drivers``, ``E0000 … failed call to cuInit``. Users read them as errors. By default
``TF_CPP_MIN_LOG_LEVEL=3`` silences what TensorFlow logs once running, but the lines
printed while its shared libraries load come before that setting is read, so the first
``import tensorflow`` runs with stderr captured and only those lines dropped; anything
else written meanwhile is passed on. A user's own ``TF_CPP_MIN_LOG_LEVEL`` wins and
turns all of this off. Which device a dream uses is still said: ``dreamcrawl dream``
prints it, and the engine logs it once (stylize.engine).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any

ENV = "TF_CPP_MIN_LOG_LEVEL"
# Set when dreamcrawl quieted TensorFlow, so that the processes it spawns (Prefect's flow
# run processes under `serve`, Dask workers) quiet their own import too: they re-import
# the entry point's module (multiprocessing's spawn does), which calls install_if_marked.
MARKER = "DREAMCRAWL_QUIET_TENSORFLOW"
# absl's pre-initialization notice, its I/W/E lines, and TensorFlow's CPU-feature note.
NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IWE]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)


def quiet_tensorflow(verbosity: int, env: MutableMapping[str, str] | None = None) -> bool:
    """Quiet TensorFlow unless ``-v`` was given or the user set ``TF_CPP_MIN_LOG_LEVEL``.

    Call before TensorFlow is imported. Returns True when it quieted it.
    """
    env = os.environ if env is None else env
    if verbosity > 0 or ENV in env or "tensorflow" in sys.modules:
        return False
    env[ENV] = "3"
    env[MARKER] = "1"
    if env is os.environ:
        install_if_marked()
    return True


def install_if_marked() -> None:
    """Quiet this process's first ``import tensorflow`` if a dreamcrawl parent asked so."""
    if os.environ.get(MARKER) != "1" or "tensorflow" in sys.modules:
        return
    if not any(isinstance(finder, _QuietImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


@contextmanager
def dropping_noise() -> Iterator[None]:
    """Capture file descriptor 2 for the block; re-emit every line that is not noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not NOISE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once and has it executed under :func:`dropping_noise`."""

    def find_spec(self, name: str, path: Any, target: ModuleType | None = None) -> Any:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:  # resource readers, get_code, is_package…
        return getattr(self.inner, name)

    def create_module(self, spec: Any) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # TensorFlow's own loader again, for anyone who inspects the module later.
        module.__loader__ = self.inner
        if module.__spec__ is not None:
            module.__spec__.loader = self.inner
        with dropping_noise():
            self.inner.exec_module(module)
