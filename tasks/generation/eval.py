"""``python -m tasks.generation.eval ckpt_path=PATH [...]``: ``nlp-lstm eval task=generation``."""

from nlp_lstm.commands.eval import main

if __name__ == "__main__":
    main(prog="python -m tasks.generation.eval", task="generation")
