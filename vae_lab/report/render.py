"""Tables as Markdown and as CSV (one line per metric cell)."""

from __future__ import annotations

import csv
from pathlib import Path

from vae_lab.report.jobs import Job
from vae_lab.report.tables import Column, Label, Metric, Row, Table

BLANK = "–"


def _number(value, digits: int) -> str:
    return BLANK if value is None else f"{value:.{digits}f}"


def _text(table: Table, row: Row, column: Column) -> str:
    if isinstance(column, Label):
        value = row.label[column.key]
        return BLANK if value is None else str(value)
    if isinstance(column, Metric):
        return row.cells[column.key].text(column.digits, problems=not table.per_job) or BLANK
    return _number(row.cells[column.of].reference, column.digits)


def markdown(table: Table) -> str:
    lines = [f"### {table.title}", "", "| " + " | ".join(c.title for c in table.columns) + " |"]
    lines.append("|" + "---:|" * len(table.columns))
    lines += ["| " + " | ".join(_text(table, row, c) for c in table.columns) + " |" for row in table.rows]
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines) + "\n"


def job_counts(jobs: list[Job]) -> str:
    """``6 jobs: 4 finished, 1 failed, 1 unfinished.``"""
    counts = {s: sum(j.status == s for j in jobs) for s in ("ok", "failed", "unfinished")}
    parts = ", ".join(f"{n} {'finished' if s == 'ok' else s}" for s, n in counts.items())
    return f"{len(jobs)} job{'s' if len(jobs) != 1 else ''}: {parts}."


def section(tables: list[Table], jobs: list[Job]) -> str:
    """The tables of one kind of experiment and a count of its jobs."""
    return "\n".join(markdown(t) for t in tables) + f"\n{job_counts(jobs)}\n"


def write_csv(path: Path, tables: list[Table], column_field: str | None = None) -> None:
    """One line per metric cell: the table's fields, the row's labels, the column (under
    ``column_field``), the metric, mean, std, how many seeds, failed and unfinished jobs, the
    reference value and the evaluations the values came from."""
    lines = []
    for table in tables:
        for row in table.rows:
            for column in (c for c in table.columns if isinstance(c, Metric)):
                cell = row.cells[column.key]
                line = table.fields | row.label | ({column_field: column.key} if column_field else {})
                lines.append(
                    line
                    | {
                        "metric": column.metric,
                        "mean": cell.mean,
                        "std": cell.std,
                        "seeds": len(cell.values),
                        "failed": cell.failed,
                        "unfinished": cell.unfinished,
                        "not_measured": cell.not_measured,
                        "not_applicable": cell.not_applicable,
                        "reference": cell.reference,
                        "evaluation": "; ".join(sorted(set(cell.sources))),
                    }
                )
    fields = list(dict.fromkeys(k for line in lines for k in line))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in line.items()} for line in lines)
