"""Training curves of a run: loss, the task's metric and the learning rate against step."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from omegaconf import OmegaConf


def _read_metrics(run_dir: Path) -> tuple[Path, dict[str, list[tuple[int, float]]]]:
    candidates = sorted(run_dir.glob("**/metrics.csv"))
    if not candidates:
        raise ValueError(f"no metrics.csv under {run_dir}: expected a run directory written by "
                         "train.py with the csv logger")
    path = candidates[0]
    series: dict[str, list[tuple[int, float]]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            step = int(float(row.get("step") or 0))
            for key, value in row.items():
                if key in ("step", "epoch") or value in ("", None):
                    continue
                series.setdefault(key, []).append((step, float(value)))
    if not series:
        raise ValueError(f"{path} holds no metrics yet")
    return path, series


def plot_run(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Draw the curves of ``run_dir`` into a PNG (default ``run_dir/curves.png``)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run directory not found: {run_dir}")
    csv_path, series = _read_metrics(run_dir)
    config = run_dir / "config.yaml"
    monitor = OmegaConf.load(config).task.monitor if config.is_file() else None
    metric_keys = [monitor] if monitor in series else sorted(
        k for k in series if k.startswith("val/") and not k.endswith("loss"))
    panels = [
        ("loss", [k for k in ("train/loss", "val/loss") if k in series]),
        ("task metric", metric_keys),
        ("learning rate", [k for k in series if k.startswith("lr-")]),
    ]
    panels = [(title, keys) for title, keys in panels if keys]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels, strict=True):
        for key in keys:
            steps, values = zip(*series[key], strict=True)
            marker = "o" if len(values) < 50 else None
            ax.plot(steps, values, label=key, marker=marker, markersize=3)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
        if title == "loss" and all(v > 0 and math.isfinite(v) for k in keys for _, v in series[k]):
            ax.set_yscale("log")
    fig.suptitle(f"{run_dir.name} ({csv_path.relative_to(run_dir)})", fontsize=9)
    fig.tight_layout()
    output = Path(output) if output else run_dir / "curves.png"
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output
