"""Reference values of the papers we reproduce, as CSV data files beside this module.

Each file has one value per line (``value``), the settings it was measured with (one column
each) and its ``source`` (the section of REFERENCE.md it comes from):

- ``vampprior.csv``: REFERENCE.md §1, the student reproduction of the VampPrior paper;
- ``xu_durrett.csv``: REFERENCE.md §3, the vMF text-VAE perplexities of Xu & Durrett.
"""

from __future__ import annotations

import csv
from importlib import resources


def load(name: str) -> list[dict[str, str]]:
    with resources.files(__name__).joinpath(name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def lookup(name: str, **settings) -> float | None:
    """The value of file ``name`` measured with ``settings`` (compared as text), or None."""
    found = [row for row in load(name) if all(row[k] == str(v) for k, v in settings.items())]
    if len(found) > 1:
        raise ValueError(f"{name}: {len(found)} values match {settings}; expected one (add a setting)")
    return float(found[0]["value"]) if found else None
