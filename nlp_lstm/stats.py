"""Corpus statistics: sizes per split, vocabulary, and the padding the batching wastes."""

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
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"data={stats['data']}")
    for column in ("split", "examples", "tokens", "characters"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, row in stats["splits"].items():
        table.add_row(split, *(f"{row[k]:,}" for k in ("examples", "tokens", "characters")))
    console = Console()
    console.print(table)
    console.print(f"vocabulary: {stats['vocab_size']:,} tokens; padding waste of one training "
                  f"epoch: {stats['padding_waste']:.2%} of real tokens", highlight=False)
    print(json.dumps(stats))
