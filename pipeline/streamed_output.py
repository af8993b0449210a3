"""Printing rows as they arrive: ``catalog sql``'s table and JSON, in flat memory.

``pipeline.tables`` lays a table out once it has every row; a query may give millions,
so here a row is written as soon as it is read. The table's column widths come from
the header and the first :data:`LAYOUT_ROWS` rows (a later, wider cell pushes its own
line out, nothing is cut beyond what :func:`pipeline.tables.cell` cuts); it is drawn
with the same box characters as the other listings, one ``│``-framed line per row.
The JSON is the same text ``json.dump(list, indent=2)`` would write.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from pipeline.tables import cell
from storage.queries import jsonable

LAYOUT_ROWS = 200


def stream_json(records: Iterable[Mapping[str, Any]], out: TextIO | None = None) -> int:
    """Write ``records`` as one JSON list, each as it comes; return how many."""
    out = out or sys.stdout
    count = 0
    for record in records:
        text = json.dumps(record, indent=2, default=jsonable, ensure_ascii=False)
        out.write(("[\n  " if count == 0 else ",\n  ") + text.replace("\n", "\n  "))
        count += 1
    out.write("\n]\n" if count else "[]\n")
    return count


def stream_table(
    columns: Sequence[str], rows: Iterator[Sequence[Any]], out: TextIO | None = None
) -> int:
    """Write an aligned table of ``rows`` (tuples in ``columns`` order); return how many."""
    out = out or sys.stdout
    head = list(itertools.islice(rows, LAYOUT_ROWS))
    first = [[cell(v) for v in row] for row in head]
    widths = [
        max([len(name), *(len(texts[i]) for texts in first)]) for i, name in enumerate(columns)
    ]
    numeric = [
        bool(head) and all(isinstance(r[i], int | float) or r[i] is None for r in head)
        for i in range(len(columns))
    ]

    def line(left: str, fill: str, joint: str, right: str) -> str:
        return left + joint.join(fill * (w + 2) for w in widths) + right + "\n"

    def framed(texts: Sequence[str], bar: str, align: bool) -> str:
        cells = (
            t.rjust(w) if align and numeric[i] else t.ljust(w)
            for i, (t, w) in enumerate(zip(texts, widths, strict=True))
        )
        return bar + bar.join(f" {c} " for c in cells) + bar + "\n"

    out.write(line("┏", "━", "┳", "┓"))
    out.write(framed(list(columns), "┃", align=False))
    out.write(line("┡", "━", "╇", "┩"))
    count = 0
    for texts in itertools.chain(first, ([cell(v) for v in row] for row in rows)):
        out.write(framed(texts, "│", align=True))
        count += 1
    out.write(line("└", "─", "┴", "┘"))
    return count
