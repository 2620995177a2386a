"""``python -m tasks.generation.generate --ckpt PATH|--onnx DIR [...]``: ``nlp-lstm generate``."""

from nlp_lstm.commands.generate import main

if __name__ == "__main__":
    main()
