"""LSTM vs GRU vs Transformer on our encoders: ``python -m benchmarks.compare`` (``__main__``).

One module per section: ``params`` (1), ``cost`` (2), ``long_range`` (3), ``quality`` (4),
``generation`` (5), ``claims`` (6: the seed's table marked), ``report`` (markdown and plots).
"""
