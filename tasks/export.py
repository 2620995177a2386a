"""``python -m tasks.export ...``: ``nlp-lstm export``."""

from nlp_lstm.commands.export import main

if __name__ == "__main__":
    main()
