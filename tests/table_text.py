"""Read rendered rich tables back from terminal text, to check what a reader sees."""

from __future__ import annotations


def rendered_headers(text: str, table: int = 0) -> list[str]:
    """The header of each column of the ``table``-th boxed table in ``text``, its lines
    joined by spaces: a word rich split mid-word comes back as two ("configura tion"), a
    cut one with an ellipsis ("idle-adj…")."""
    lines = text.splitlines()
    tops = [i for i, ln in enumerate(lines) if ln.lstrip().startswith("┏")]
    top = tops[table]
    sep = next(i for i in range(top, len(lines)) if lines[i].lstrip().startswith("┡"))
    rows = [ln.strip().strip("┃").split("┃") for ln in lines[top + 1:sep]]
    return [" ".join(" ".join(r[c].split()) for r in rows if r[c].strip())
            for c in range(len(rows[0]))]


def widest_line(text: str) -> int:
    return max((len(ln.rstrip()) for ln in text.splitlines()), default=0)
