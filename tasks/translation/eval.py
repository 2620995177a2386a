"""``python -m tasks.translation.eval ckpt_path=PATH [...]``: ``nlp-lstm eval task=translation``."""

from nlp_lstm.commands.eval import main

if __name__ == "__main__":
    main(prog="python -m tasks.translation.eval", task="translation")
