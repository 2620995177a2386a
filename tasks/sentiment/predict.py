"""Label texts with a sentiment checkpoint.

    python -m tasks.sentiment.predict --ckpt PATH|--onnx DIR [TEXT ...] [--input FILE|-]
"""

from nlp_lstm.predict import main

if __name__ == "__main__":
    main(task="sentiment")
