"""``python -m tasks.sentiment.predict --ckpt PATH|--onnx DIR [TEXT ...] [--input FILE|-]``:
``nlp-lstm predict`` for a sentiment model."""

from nlp_lstm.commands.predict import main

if __name__ == "__main__":
    main(prog="python -m tasks.sentiment.predict", task="sentiment")
