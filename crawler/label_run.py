"""A crawl's labeller process: ``python -m crawler.label_run RUN_ID``.

:func:`crawler.api.run_crawl` starts it beside the crawl process when labels are on (and
no content check runs in the crawl itself), so the crawler never loads TensorFlow. It
runs niced, on one TensorFlow thread, so that labelling takes at most a core from the
crawl, and loads TensorFlow only when the crawl has ended or a backlog of images waits.
It labels the run's committed images in batches as they appear, and when its
standard input closes (the crawl has ended) it labels what is left, prints its counts
as JSON and exits. Labels are extra: if it fails, the crawl's images stay and
``dreamcrawl label`` labels them later.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from crawler.labelling import label_catalog, labeller_available
from storage.db import Catalog, open_catalog
from storage.labels import count_unlabelled
from storage.models import CrawlRun
from storage.settings import get_settings

log = logging.getLogger("dreamcrawl.crawler.label_run")

POLL_S = 0.5  # how long an idle labeller waits for the crawl's next images
# Images waiting before the labeller loads TensorFlow while the crawl still runs: loading
# costs seconds of CPU, worth spending beside a crawl only for a backlog this large.
BACKLOG = 256


@dataclass
class LabelProcess:
    """The running labeller of one crawl run."""

    run_id: int
    child: subprocess.Popen[str]

    def finish(self, catalog: Catalog) -> dict[str, Any] | None:
        """Tell it the crawl has ended, wait for the last labels, add its counts to the
        run's (``labels``); the run's counts, or None if labelling failed."""
        out, err = self.child.communicate(input="")
        if self.child.returncode != 0:
            last = (err or "").strip().splitlines()[-1:] or [f"exit {self.child.returncode}"]
            log.warning("crawl run %s: labelling failed (%s); 'dreamcrawl label' labels the "
                        "rest", self.run_id, last[0])  # fmt: skip
            return None
        lines = out.strip().splitlines()
        with catalog.session() as session:
            run = session.get(CrawlRun, self.run_id)
            assert run is not None
            run.counts = {**run.counts, "labels": json.loads(lines[-1]) if lines else {}}
            return dict(run.counts)


@contextmanager
def killed_on_error(labels: LabelProcess | None) -> Iterator[None]:
    """Stop the labeller at once if the crawl fails (nothing more will come to label)."""
    try:
        yield
    except BaseException:
        if labels is not None:
            labels.child.kill()
            labels.child.wait()
        raise


def wants_labels(run: CrawlRun) -> bool:
    """Labels on (the default), and not made by the crawl's own content check."""
    config = run.settings or {}
    overrides = config.get("overrides") or {}
    value = str(overrides.get("DREAMCRAWL_LABELS", "true")).strip().lower()
    check = str(overrides.get("DREAMCRAWL_CONTENT_CHECK", "")).strip().lower()
    checks = bool(config.get("content_check")) or check in ("1", "true", "yes", "on")
    return value in ("1", "true", "yes", "on") and not checks


def start(catalog: Catalog, run_id: int, env: dict[str, str]) -> LabelProcess | None:
    """Start the labeller of ``run_id`` (in the crawl's environment ``env``) if it wants
    labels and the weights are there."""
    with catalog.session() as session:
        run = session.get(CrawlRun, run_id)
        if run is None or not wants_labels(run):
            return None
    if not labeller_available(catalog.settings.weights_dir):
        return None  # run_crawl said so before it started
    env = {**env, "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    command = [sys.executable, "-m", "crawler.label_run", str(run_id)]
    child = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return LabelProcess(run_id, child)


def label_run(
    catalog: Catalog, run_id: int, crawl_ended: threading.Event, backlog: int = BACKLOG
) -> dict[str, int]:
    """Label ``run_id``'s images until the crawl has ended and none are left.

    TensorFlow loads once the crawl has ended or ``backlog`` images wait, whichever
    comes first: a short crawl is labelled after it, a long one as it goes.
    """
    from stylize.label_weights import labeller_id
    from stylize.labels import load_labeller

    while not crawl_ended.is_set():
        with catalog.read_session() as session:
            if count_unlabelled(session, labeller_id(), crawl_run_id=run_id) >= backlog:
                break
        crawl_ended.wait(POLL_S)
    _one_quiet_core()
    labeller = load_labeller(catalog.settings.weights_dir)
    counts: Counter[str] = Counter()
    while True:
        ended = crawl_ended.is_set()
        done = label_catalog(catalog, labeller, crawl_run_id=run_id)
        counts.update(done)
        if ended:
            return dict(counts)  # this pass began after the crawl's last commit
        if not done:
            crawl_ended.wait(POLL_S)


def _one_quiet_core() -> None:
    """Below the crawl in the CPU queue, on one core at most: labels wait, downloads and
    commits do not (TensorFlow's threads inherit the priority)."""
    os.nice(10)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m crawler.label_run RUN_ID", file=sys.stderr)
        return 2
    ended = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        ended.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    counts = label_run(open_catalog(get_settings()), int(args[0]), ended)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
