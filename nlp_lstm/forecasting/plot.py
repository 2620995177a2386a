"""Forecasts against the truth: one channel of a series file, the last input rows and the
horizon's truth drawn with the model's forecast (and its quantile band) from a few origins of a
split. Torch-free: the model is a checkpoint's ``Forecaster`` or an export's ``OnnxForecaster``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nlp_lstm.forecasting.series import Series, format_stamp, split_rows


def plot_forecasts(model: Any, series: Series, out: str | Path, channel: str | None = None,
                   split: str = "test", origins: int = 3, context: int = 96) -> Path:
    """Draw ``origins`` forecasts of ``channel`` (default: the model's last target) spread over
    ``split`` into a PNG at ``out``; ``context`` input rows are drawn before each origin."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    channel = channel or model.targets[-1]
    if channel not in model.targets:
        raise ValueError(f"channel {channel!r} is not forecast by this model; its targets: "
                         f"{model.targets}")
    missing = [c for c in model.columns if c not in series.columns]
    if missing:
        raise ValueError(f"{series.name} lacks the model's column(s) {missing}")
    L, H = model.input_length, model.horizon
    values = series.select(model.columns).values  # (N, C)
    start, end = split_rows(series, split, L)
    first, last = start + L, end - H  # the split's first and last origin
    if last < first:
        raise ValueError(f"the {split} split of {series.name} holds no window of {L} + {H} rows")
    at = np.linspace(first, last, origins).round().astype(int)  # (origins,)
    inputs = [{"timestamps": [format_stamp(t) for t in series.timestamps[t - L : t]],
               "rows": values[t - L : t].tolist()} for t in at]
    results, _ = model.predict(inputs)
    c = model.targets.index(channel)
    truth = series.select([channel]).values[:, 0]
    fig, axes = plt.subplots(len(at), 1, figsize=(10, 2.6 * len(at)), squeeze=False)
    for ax, t, result in zip(axes[:, 0], at, results, strict=True):
        steps = np.arange(t - context, t + H)
        ax.plot(steps, truth[t - context : t + H], color="black", lw=1, label="truth")
        ahead = np.arange(t, t + H)
        ax.plot(ahead, np.asarray(result["forecast"])[:, c], color="tab:blue", lw=1.5,
                label="forecast")
        if "quantiles" in result:
            levels = sorted(result["quantiles"], key=float)
            low, high = (np.asarray(result["quantiles"][q])[:, c] for q in (levels[0],
                                                                           levels[-1]))
            ax.fill_between(ahead, low, high, color="tab:blue", alpha=0.2,
                            label=f"{levels[0]}-{levels[-1]} quantiles")
        ax.axvline(t, color="grey", ls=":", lw=1)
        ax.set_title(f"{series.name} {channel}: forecast from {format_stamp(series.timestamps[t])}"
                     f" ({H} steps)", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("row of the series")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
