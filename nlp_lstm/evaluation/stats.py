"""Corpus statistics: sizes per split, the vocabulary (of text), and the padding the
batching wastes."""

from __future__ import annotations

import json
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig


def data_stats(cfg: DictConfig, name: str) -> dict[str, Any]:
    """Statistics of the data module ``cfg.data`` (named ``name``), printed as a table and, on
    the last line of stdout, as one JSON object."""
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    stats = {"data": name, **datamodule.statistics()}
    _print(stats)
    return stats


def _print(stats: dict[str, Any]) -> None:
    """The table has a column for each size some split reports (``examples``, and e.g.
    ``tokens`` and ``characters`` for text); the vocabulary only where the data has one."""
    from rich.console import Console
    from rich.table import Table

    rows = stats["splits"]
    columns = list(dict.fromkeys(k for row in rows.values() for k in row if k != "skipped"))
    table = Table(title=f"data={stats['data']}")
    for column in ("split", *columns):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, row in rows.items():
        table.add_row(split, *(f"{row[k]:,}" if k in row else "" for k in columns))
    console = Console()
    console.print(table)
    notes = []
    if "vocab_size" in stats:
        notes.append(f"vocabulary: {stats['vocab_size']:,} tokens")
    if "padding_waste" in stats:
        unit = "tokens" if "vocab_size" in stats else "time steps"
        notes.append(f"padding waste of one training epoch: {stats['padding_waste']:.2%} of "
                     f"real {unit}")
    if notes:
        console.print("; ".join(notes), highlight=False)
    print(json.dumps(stats))
