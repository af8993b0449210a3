"""Which ImageNet classes a keyword covers, through WordNet's hypernyms.

"cat" covers tabby, Persian, Siamese and Egyptian cat (and the big cats, one of cat's
WordNet senses); "dog" covers the 118 dog breeds; "car" covers sports car, cab and
convertible. The table (``stylize/data/wordnet_keywords.json``) is generated once by
``scripts/gen_label_tables.py`` from WordNet 3.0: every noun lemma, over all its senses,
mapped to the ImageNet classes below it. A keyword WordNet knows but no ImageNet class
falls under ("sunset") has no content meaning: :func:`keyword_classes` returns None and
the caller accepts such a keyword on its text alone, and says so.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

# WordNet's own rules for noun plurals (morphy), tried in order.
_SUFFIXES = (("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"))
_SUFFIXES += (("men", "man"), ("ies", "y"), ("s", ""))


@cache
def _table() -> dict:
    text = resources.files("stylize").joinpath("data/wordnet_keywords.json").read_text()
    return json.loads(text)


def _expand(ranges: str) -> frozenset[int]:
    indices: set[int] = set()
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        indices.update(range(int(first), int(last or first) + 1))
    return frozenset(indices)


def lemma(keyword: str) -> str:
    """A keyword as WordNet spells a lemma: lower case, single spaces."""
    return " ".join(re.sub(r"[\W_]+", " ", keyword.lower()).split())


@cache
def keyword_classes(keyword: str) -> frozenset[int] | None:
    """Indices (0..999) of the ImageNet classes under ``keyword``, or None for none.

    Plurals are reduced the way WordNet does ("cats" → "cat", "mice" → "mouse").
    """
    table = _table()
    lemmas, plurals = table["lemmas"], table["plurals"]
    word = lemma(keyword)
    candidates = [word, plurals.get(word, "")]
    head, _, last = word.rpartition(" ")
    for suffix, replacement in _SUFFIXES:
        if last.endswith(suffix) and len(last) > len(suffix):
            singular = last[: len(last) - len(suffix)] + replacement
            candidates.append(f"{head} {singular}".strip())
    for candidate in candidates:
        if candidate in lemmas:
            return _expand(lemmas[candidate])
    return None
