"""``python -m tasks.sentiment.eval ckpt_path=PATH [...]``: ``nlp-lstm eval task=sentiment ...``."""

from nlp_lstm.commands.eval import main

if __name__ == "__main__":
    main(prog="python -m tasks.sentiment.eval", task="sentiment")
