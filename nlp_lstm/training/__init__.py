"""Training infrastructure that task modules import (below the tasks): the shared
LightningModule base (``module``), callbacks, optimizers and schedules (``optim``), precision
checks, the time budget, multi-node launch, fine-tuning and weight transfer, and the
pretraining contamination check."""
