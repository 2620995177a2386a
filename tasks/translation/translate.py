"""``python -m tasks.translation.translate --ckpt PATH|--onnx DIR ...``: ``nlp-lstm translate``."""

from nlp_lstm.commands.translate import main

if __name__ == "__main__":
    main()
