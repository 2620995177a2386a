"""Training curves of a run: loss, the task's metric and the learning rate against step; and
several runs' step-by-step curves side by side (``curve.csv`` of ``callbacks.TrainingCurve``)."""

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


def _running_mean(values: list[float], window: int) -> list[float]:
    """The mean of each value and the ``window - 1`` before it (fewer at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_curves(run_dirs: list[str | Path], output: str | Path, *, smooth: int = 25,
                labels: list[str] | None = None) -> Path:
    """Several runs compared step by step: the training loss and the gradient norm before
    clipping (running means over ``smooth`` steps, ``curve.csv``), each step's gradient norm
    faintly behind, and the monitored validation metric (``metrics.csv``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nlp_lstm.training.callbacks import read_curve

    if smooth < 1:
        raise ValueError(f"smooth must be positive, got {smooth}")
    dirs = [Path(d) for d in run_dirs]
    labels = labels or [d.name for d in dirs]
    if len(labels) != len(dirs):
        raise ValueError(f"{len(labels)} labels for {len(dirs)} runs")
    for d in dirs:
        if not (d / "curve.csv").is_file():
            raise ValueError(f"no curve.csv in {d}: expected a run directory written with the "
                             "training_curve callback")
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for d, label in zip(dirs, labels, strict=True):
        curve = read_curve(d / "curve.csv")
        (line,) = axes[0].plot(curve["step"], _running_mean(curve["loss"], smooth), label=label)
        axes[1].plot(curve["step"], curve["grad_norm"], color=line.get_color(), alpha=0.15,
                     linewidth=0.5)
        axes[1].plot(curve["step"], _running_mean(curve["grad_norm"], smooth),
                     color=line.get_color(), label=label)
        config = d / "config.yaml"
        monitor = OmegaConf.load(config).task.monitor if config.is_file() else None
        try:
            _, series = _read_metrics(d)
        except ValueError:
            series = {}
        if monitor in series:
            steps, values = zip(*series[monitor], strict=True)
            axes[2].plot(steps, values, marker="o", markersize=3, color=line.get_color(),
                         label=label)
            axes[2].set_title(f"validation {monitor}")
    axes[0].set_title(f"training loss (mean of {smooth} steps)")
    axes[1].set_title("gradient norm before clipping")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=8)
    fig.tight_layout()
    output = Path(output)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output
