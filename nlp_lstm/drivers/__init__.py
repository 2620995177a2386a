"""The drivers, above the tasks: the task registry (names to tasks, checkpoints to models),
training (``train``), evaluation (``evaluate``), prediction (``predict``) and ``load``, the
Python face of inference on a checkpoint or an export."""
