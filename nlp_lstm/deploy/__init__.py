"""Deployment, generic over tasks: ONNX export (``export``), int8 quantization (``quantize``),
the torch-free ONNX runtime (``runtime``) and the batching HTTP server (``serve``).
This package's ``__init__`` imports nothing, so that ``runtime`` and ``serve``'s endpoints stay
torch-free."""
