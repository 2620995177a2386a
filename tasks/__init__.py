"""``python -m tasks.<task>.<command>``: the documented short forms, each a call into
``nlp_lstm.commands`` (the ``nlp-lstm`` console script runs the same functions)."""
