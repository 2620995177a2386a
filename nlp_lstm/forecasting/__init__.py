"""Forecasting: numeric time series (ETT, any CSV of a date column and numeric columns) on the
standard long-horizon protocol (``series``), with a segment recurrent forecaster on the shared
encoder (``net``, ``module``).

The names below load on first use, so that the torch-free protocol (``series``) imports without
torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nlp_lstm.lazy import lazy_attributes

if TYPE_CHECKING:
    from nlp_lstm.forecasting.data import ForecastDataModule, SeriesFile, SyntheticSeries
    from nlp_lstm.forecasting.module import Forecaster
    from nlp_lstm.forecasting.net import SegmentForecaster

_HOMES = {
    "ForecastDataModule": "nlp_lstm.forecasting.data",
    "Forecaster": "nlp_lstm.forecasting.module",
    "SegmentForecaster": "nlp_lstm.forecasting.net",
    "SeriesFile": "nlp_lstm.forecasting.data",
    "SyntheticSeries": "nlp_lstm.forecasting.data",
}

__all__ = ["ForecastDataModule", "Forecaster", "SegmentForecaster", "SeriesFile",
           "SyntheticSeries"]

__getattr__ = lazy_attributes(__name__, _HOMES)
