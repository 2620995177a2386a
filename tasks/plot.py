"""``python -m tasks.plot ...``: ``nlp-lstm plot``."""

from nlp_lstm.commands.plot import main

if __name__ == "__main__":
    main()
