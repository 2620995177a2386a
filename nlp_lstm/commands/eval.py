"""``nlp-lstm eval ckpt_path=PATH [task=...] [data=...] [split=test] [output=FILE]``: evaluate a
checkpoint of any task (``nlp_lstm.drivers.evaluate``). The task is read from the checkpoint
unless given (``python -m tasks.<task>.eval`` gives it); so is the data: without ``data=``, the
data the model was trained on, with any ``data.KEY=VALUE`` overrides applied to it."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from nlp_lstm.core.cli import bad_input_exits, compose_config, fail
from nlp_lstm.drivers.evaluate import evaluate
from nlp_lstm.drivers.registry import checkpoint_task


def main(argv: Sequence[str] | None = None, prog: str = "nlp-lstm eval",
         task: str | None = None) -> None:
    overrides = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help") for arg in overrides):
        print(__doc__)
        return
    with bad_input_exits():
        if task is None and not any(o.startswith("task=") for o in overrides):
            path = next((o.split("=", 1)[1] for o in overrides if o.startswith("ckpt_path=")),
                        None)
            if path is None:
                fail(f"{prog}: give the checkpoint to evaluate: ckpt_path=PATH")
            task = checkpoint_task(path).name
        task_choice = [f"task={task}"] * (task is not None)
        if any(o.lstrip("+~").startswith("data=") for o in overrides):
            evaluate(compose_config("eval", task_choice + overrides))
            return
        # The checkpoint's data: its data.* overrides apply to that node, not the task default's.
        data = [o for o in overrides if o.lstrip("+").startswith("data.")]
        rest = [o for o in overrides if o not in data]
        evaluate(compose_config("eval", task_choice + rest), trained_data=data)
