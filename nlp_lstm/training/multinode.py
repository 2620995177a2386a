"""Training processes started by a launcher (torchrun, SLURM's srun), on one node or several.

Lightning starts the processes of ``trainer=ddp`` itself and hands its children the parent's
Hydra run directory. A launcher starts every process on its own instead, and each runs Hydra,
which names the run directory after the clock (``runs/<date>_<time>``): processes that start
in different seconds, as on different nodes, would each make a run directory of their own.
``launched_overrides`` gives them the same one, before Hydra starts; Lightning then writes
checkpoints, logs and metrics into it from global rank 0 only. The directory must be on a file
system that every node sees: each rank reads the best checkpoint back for the final evaluation.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

__all__ = ["launched_overrides"]

# The run directory of conf/train.yaml, with the launch's name in place of the timestamp.
RUN_DIR = "${paths.log_dir}/${task.name}/runs/"
STAMP = "%Y-%m-%d_%H-%M-%S"  # the timestamp of conf/train.yaml's ${now:...}
STORE_KEY = "nlp_lstm/run_name"
STORE_TIMEOUT = timedelta(seconds=60)


def launched_overrides(argv: Sequence[str], env: Mapping[str, str] = os.environ) -> list[str]:
    """Hydra overrides for one process of a launched job (none outside one): all ranks write one
    run directory (unless ``hydra.run.dir`` is given, the same on every node), and ranks > 0
    keep out of rank 0's files there: their job log is ``train_ddp_process_<rank>.log`` (as
    Lightning names its children's) and they write no ``.hydra/``. Sweeps (``-m``) are left
    alone."""
    launch = _launch(env)
    if launch is None or {"-m", "--multirun"} & set(argv):
        return []
    rank, name = launch
    overrides = []
    if not any(arg.split("=", 1)[0].lstrip("+~") == "hydra.run.dir" for arg in argv):
        overrides.append(f"hydra.run.dir={RUN_DIR}{name()}")
    if rank > 0:
        overrides += [f"hydra.job.name=train_ddp_process_{rank}", "hydra.output_subdir=null"]
    return overrides


def _launch(env: Mapping[str, str]) -> tuple[int, Callable[[], str]] | None:
    """(global rank, a function giving the run's name, the same in every process) when the
    process is one of several a launcher started; None otherwise. SLURM first, as Lightning
    picks its cluster environment (``lightning_fabric.plugins.environments``)."""
    slurm_tasks = int(env.get("SLURM_NTASKS", "1") or 1)
    if slurm_tasks > 1 and env.get("SLURM_JOB_NAME") not in ("bash", "interactive"):
        # One name per job step, known to every task: srun twice in a job, two run directories.
        step = env.get("SLURM_STEP_ID")
        name = f"slurm-{env['SLURM_JOB_ID']}" + (f".{step}" if step else "")
        return int(env.get("SLURM_PROCID", "0")), lambda: name
    if "TORCHELASTIC_RUN_ID" in env and int(env.get("WORLD_SIZE", "1")) > 1:
        return int(env["RANK"]), lambda: _torchrun_name(env)
    return None


def _torchrun_name(env: Mapping[str, str]) -> str:
    """The run's timestamp, taken by whichever process asks first, through the store that
    torchrun's agent on node 0 serves to its workers (at MASTER_ADDR:MASTER_PORT, once the
    nodes have met; the process group is not up yet). Without that store, torchrun's run id."""
    if env.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        from torch.distributed import TCPStore

        store = TCPStore(env["MASTER_ADDR"], int(env["MASTER_PORT"]), is_master=False,
                         timeout=STORE_TIMEOUT)
        key = f"{STORE_KEY}/{env['TORCHELASTIC_RUN_ID']}"  # one name per job, across restarts
        return store.compare_set(key, "", time.strftime(STAMP)).decode()
    run_id = env["TORCHELASTIC_RUN_ID"]
    if run_id in ("", "none"):
        raise ValueError("torchrun without its agent's store (TORCHELASTIC_USE_AGENT_STORE) "
                         "needs --rdzv-id=<a job id> or hydra.run.dir=<a shared folder> to "
                         "name one run directory for every node")
    return f"torchrun-{run_id}"
