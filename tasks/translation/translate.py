"""Translate text with a translation checkpoint.

    python -m tasks.translation.translate --ckpt PATH|--onnx DIR [--provider P] [TEXT ...]
        [--input FILE|-] [--beam-size N]
        [--n-best K] [--batch-size N] [--max-length-ratio A] [--attention-png DIR]
"""

from nlp_lstm.translation.translate import main

if __name__ == "__main__":
    main()
