"""``python -m tasks.data_stats ...``: ``nlp-lstm data-stats``."""

from nlp_lstm.commands.data_stats import main

if __name__ == "__main__":
    main()
