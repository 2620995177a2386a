"""Serve a checkpoint (or an ONNX export) over HTTP with dynamic batching and an input-length
guard.

    python -m tasks.serve --ckpt PATH|--onnx DIR [--provider P] [--host 127.0.0.1] [--port 8000]
        [--max-batch-size 32] [--max-wait-ms 10] [--max-input-tokens N] [--workers N]
        [--max-queue N] [--max-body-bytes N]
"""

from nlp_lstm.serve.main import main

if __name__ == "__main__":
    main()
