"""Export a checkpoint to ONNX for the torch-free runtime (``nlp_lstm.runtime``).

    python -m tasks.export --ckpt PATH --out DIR [--quantize int8] [--opset N]
"""

from nlp_lstm.export import main

if __name__ == "__main__":
    main()
