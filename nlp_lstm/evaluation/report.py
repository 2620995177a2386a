"""Metrics on the console: one table of the scalars, then what the task adds (e.g. a confusion
matrix)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from nlp_lstm.core.task import Task


def print_metrics(metrics: dict[str, Any], title: str, task: Task, model: Any) -> Console:
    """Print the float and integer ``metrics`` as a table, then the task's report; returns the
    console for more lines."""
    console = Console()
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
        elif isinstance(value, int) and not isinstance(value, bool):
            table.add_row(key, str(value))
    console.print(table)
    if task.report is not None:
        task.report(metrics, model, console)
    return console
