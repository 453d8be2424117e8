"""One table mechanism: a spec says what a kind of experiment's table shows, `build` fills it in.

A table has rows, each a label (``latent 40, K 500``) and the jobs it holds, and three kinds of
columns: the row's labels; metrics, whose cell gathers one metric over the row's jobs that the
column takes (mean ± std over seeds), read from each job's most precise evaluation; and reference
values, the paper's figure for a metric cell, shown beside it. Under each table a note says which
evaluations its headline metric came from. A new kind of table is one :class:`TableSpec`
subclass (see ``specs.py``), not a new mechanism.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vae_lab.report.jobs import Job


@dataclass(frozen=True)
class Label:
    key: str  # the row label's name, also its column in the report CSVs
    title: str


@dataclass(frozen=True)
class Metric:
    key: str  # names the column in a row's cells and in the report CSVs ("vamp", "kl")
    title: str
    metric: str  # what its cells gather ("test/nll")
    digits: int = 2
    where: Callable[[Job], bool] | None = None  # which of a row's jobs it takes (None: all)
    applies: Callable[[Job], bool] | None = None  # False: the metric has no meaning for the job ("n/a")


@dataclass(frozen=True)
class Reference:
    of: str  # key of the metric column whose reference value it shows
    title: str = "reference"
    digits: int = 2


Column = Label | Metric | Reference


@dataclass
class Cell:
    values: list[float]
    sources: list[str]  # the evaluation each value came from
    failed: int = 0
    unfinished: int = 0
    not_measured: int = 0  # finished without this metric (e.g. no importance samples drawn)
    not_applicable: int = 0  # the metric has no meaning for the job's model (e.g. CU on the sphere)
    reference: float | None = None

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None  # sample std over seeds

    def text(self, digits: int, problems: bool = True) -> str:
        """``91.00 ± 1.41 (2 seeds) (1 failed)``; ``problems=False`` leaves out the jobs without a value."""
        counts = [(self.failed, "failed"), (self.unfinished, "unfinished"), (self.not_measured, "not measured")]
        counts = [(n, what) for n, what in counts if n and problems]
        if not self.values:
            return ", ".join(what for _, what in counts) or ("n/a" if self.not_applicable else "")
        text = f"{self.mean:.{digits}f}"
        if self.std is not None:
            text += f" ± {self.std:.{digits}f} ({len(self.values)} seeds)"
        return text + (f" ({', '.join(f'{n} {what}' for n, what in counts)})" if counts else "")


@dataclass
class Row:
    label: dict  # e.g. {"latent": 40, "components": 500}
    jobs: list[Job]
    cells: dict[str, Cell] = field(default_factory=dict)  # metric column key -> cell


@dataclass
class Table:
    name: str  # "mnist"
    quantity: str  # "test NLL (nats)"
    fields: dict  # what the whole table is about (dataset, metric): columns of the report CSVs
    columns: list[Column]
    rows: list[Row]
    per_job: bool
    note: str  # which evaluations the headline metric came from ("" when none)

    @property
    def title(self) -> str:
        return f"{self.name}: {self.quantity}" + ("" if self.per_job else ", mean ± std over seeds")


class TableSpec:
    """What one kind of experiment's table shows. Subclasses set the class attributes and
    implement ``describe``, ``columns`` and ``label`` (or ``rows``); the rest has defaults."""

    kind: str  # the jobs it takes (`Job.kind`)
    csv_file: str  # where `python -m vae_lab.report` writes its cells
    column_field: str | None = None  # CSV column naming a metric column's key ("prior")
    per_job = False  # one row per job (problems in its labels) instead of mean ± std over seeds
    label_titles: dict[str, str] = {}
    note_name = "NLL"  # the headline metric, as the note under the table names it

    def group(self, job: Job) -> dict:
        """The fields that split the jobs into tables (one table when empty)."""
        return {}

    def describe(self, fields: dict) -> tuple[str, str]:
        """The table's name and what its cells hold."""
        raise NotImplementedError

    def label(self, job: Job) -> dict:
        """The row a job belongs to."""
        raise NotImplementedError

    def rows(self, jobs: list[Job]) -> list[Row]:
        if self.per_job:
            return sorted((Row(self.label(j), [j]) for j in jobs), key=lambda r: _sort_key(r.label.values()))
        groups = defaultdict(list)
        for job in jobs:
            groups[tuple(self.label(job).items())].append(job)
        return [Row(dict(k), groups[k]) for k in sorted(groups, key=lambda k: _sort_key(v for _, v in k))]

    def columns(self, fields: dict, jobs: list[Job], reference: bool) -> list[Metric | Reference]:
        """The columns right of the row labels; ``reference``: the user asked for reference values."""
        raise NotImplementedError

    def reference(self, fields: dict, label: dict, column: Metric) -> float | None:
        return None

    def note_metric(self, fields: dict) -> str:
        return "test/nll"

    def figures(self, out: Path, tables: list[Table], jobs: list[Job]) -> None:
        """Plots beside the tables (none by default)."""


def build(spec: TableSpec, jobs: list[Job], reference: bool = False) -> list[Table]:
    groups = defaultdict(list)
    for job in jobs:
        groups[tuple(spec.group(job).items())].append(job)
    tables = []
    for key in sorted(groups, key=lambda k: _sort_key(v for _, v in k)):
        fields, mine = dict(key), groups[key]
        rows = spec.rows(mine)
        columns = spec.columns(fields, mine, reference)
        for row in rows:
            for column in columns:
                if isinstance(column, Metric):
                    row.cells[column.key] = _cell(row.jobs, column, spec.reference(fields, row.label, column))
        labels = [Label(k, spec.label_titles.get(k, k)) for k in (rows[0].label if rows else {})]
        name, quantity = spec.describe(fields)
        note = evaluation_note(mine, spec.note_metric(fields), spec.note_name)
        tables.append(Table(name, quantity, fields, labels + columns, rows, spec.per_job, note))
    return tables


def _cell(jobs: list[Job], column: Metric, reference: float | None) -> Cell:
    jobs = [j for j in jobs if column.where is None or column.where(j)]
    inapplicable = [j for j in jobs if column.applies is not None and not column.applies(j)]
    jobs = [j for j in jobs if j not in inapplicable]
    found = [e for j in jobs if j.status == "ok" and (e := j.evaluation(column.metric)) is not None]
    return Cell(
        values=[e.metrics[column.metric] for e in found],
        sources=[e.describe() for e in found],
        failed=sum(j.status == "failed" for j in jobs),
        unfinished=sum(j.status == "unfinished" for j in jobs),
        not_measured=sum(j.status == "ok" for j in jobs) - len(found),
        not_applicable=len(inapplicable),
        reference=reference,
    )


def evaluation_note(jobs: list[Job], metric: str, name: str) -> str:
    """``NLL from: S=5000 importance samples, by vae_lab.evaluate (2 jobs); S=100 … (4 jobs).``"""
    found = [e for j in jobs if j.status == "ok" and (e := j.evaluation(metric)) is not None]
    counts = Counter((-e.importance_samples, e.describe()) for e in found)
    if not counts:
        return ""
    parts = [f"{text} ({n} job{'s' if n > 1 else ''})" for (_, text), n in sorted(counts.items())]
    return f"{name} from: {'; '.join(parts)}."


def _sort_key(values) -> tuple:
    return tuple((v is None, v if v is not None else 0) for v in values)
