"""Forecasting: numeric time series (ETT, any CSV of a date column and numeric columns) on the
standard long-horizon protocol. This first part holds the data protocol (``series``: reading,
borders, the train-only scaler, windows, the repeat baseline, scores); the model, its task and
commands follow (issue 20)."""
