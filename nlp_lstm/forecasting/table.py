"""Forecasting from a CSV and to one (``nlp-lstm predict --csv FILE [--out FILE]``): the file's
last ``input_length`` rows are the window; the forecast is written as rows at the future
timestamps, in original units.

Torch-free (numpy and the standard library): a checkpoint's ``Forecaster`` and an export's
``OnnxForecaster`` offer the same attributes and ``predict``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from nlp_lstm.data.errors import DataError
from nlp_lstm.forecasting.series import format_stamp, read_csv


def quantile_column(target: str, quantile: str | float) -> str:
    """``OT``, 0.1 -> ``OT_q0.1``."""
    return f"{target}_q{quantile}"


class ForecastTable:
    """Reads a window from a series CSV and writes forecasts as one
    (``nlp_lstm.core.task.TableIO``).
    """

    def read(self, path: str | Path, model: Any, index_column: str = "date") -> list[Any]:
        """One input: the last ``model.input_length`` rows of the model's columns, with their
        timestamps. A DataError names the file and what is wrong: an unreadable date or value,
        NaN, duplicate or irregular timestamps (anywhere in the file), a missing column, too
        few rows. Columns the model does not read are ignored."""
        series = read_csv(path, index_column)
        try:
            series = series.select(model.columns)
        except DataError as e:  # say it is the model that needs them
            raise DataError(f"the model reads the columns {list(model.columns)}: {e}") from None
        rows = len(series.values)
        if rows < model.input_length:
            raise DataError(f"{path} has {rows} rows; the model reads the last "
                            f"{model.input_length}, so at least {model.input_length} rows are "
                            "needed")
        last = slice(rows - model.input_length, rows)
        return [{"timestamps": [format_stamp(t) for t in series.timestamps[last]],
                 "rows": series.values[last].tolist()}]

    def write(self, results: Sequence[dict[str, Any]], out: TextIO, model: Any,
              index_column: str = "date") -> None:
        """The date column, the targets and, for a quantile model, ``<target>_q<q>`` for each
        target and quantile; one row per forecast step, at the future timestamps."""
        targets = list(model.targets)
        quantiles = list(results[0].get("quantiles", {})) if results else []
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([index_column, *targets,
                         *(quantile_column(t, q) for t in targets for q in quantiles)])
        for result in results:
            for step, (stamp, row) in enumerate(zip(result["timestamps"], result["forecast"],
                                                    strict=True)):
                bands = [result["quantiles"][q][step][c] for c in range(len(targets))
                         for q in quantiles]
                writer.writerow([stamp, *row, *bands])


TABLE = ForecastTable()
