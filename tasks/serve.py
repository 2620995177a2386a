"""``python -m tasks.serve ...``: ``nlp-lstm serve``."""

from nlp_lstm.commands.serve import main

if __name__ == "__main__":
    main()
