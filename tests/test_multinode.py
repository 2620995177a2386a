"""Multi-node DDP: two "nodes", each a torchrun agent with one CPU process, meet on 127.0.0.1
and train one tiny model with gloo (``trainer=ddp_multinode``); and the run-directory overrides
that a launched process gets (``nlp_lstm.training.multinode``)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from conftest import ROOT
from omegaconf import OmegaConf

from nlp_lstm.training.multinode import RUN_DIR, launched_overrides

SMALL = ["data.source.num_examples=300", "data.loader.batch_size=32", "model.embedding_dim=16",
         "model.encoder.hidden_size=16", "trainer.max_epochs=1", "debug=limit",
         "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
         "callbacks.throughput.warmup_steps=1"]
TIMEOUT = 240  # seconds for the whole two-node run; it takes well under a minute
LAUNCH_VARS = {"RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
               "GROUP_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}
LATE = 1.5  # seconds node 1 starts late: alone, its clock would name another run directory


class WeightDigest(pl.Callback):
    """Loaded by the training processes (``+callbacks.digest._target_=test_multinode.
    WeightDigest``): every global rank writes ``digest-rank<R>.json``, the digests of its weights
    when fitting starts and ends, into its own run directory (``trainer.default_root_dir``)."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = digest(pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        record = {"rank": trainer.global_rank, "world_size": trainer.world_size,
                  "num_nodes": trainer.num_nodes, "step": trainer.global_step,
                  "start": self.start, "end": digest(pl_module)}
        path = Path(trainer.default_root_dir) / f"digest-rank{trainer.global_rank}.json"
        path.write_text(json.dumps(record))


def digest(module: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer, names and bytes."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_nodes(tmp_path: Path, launcher: str, args: list[str]) -> list[tuple[int, str]]:
    """Two nodes on 127.0.0.1, one process each, started as ``launcher`` would: ``torchrun``
    (an agent per node, node ranks 0 and 1) or ``slurm`` (srun's variables, set here); node 1's
    process starts ``LATE`` seconds late. Each node's (exit code, log); on a timeout both process
    groups are killed and the logs kept."""
    port = free_port()
    late = tmp_path / "late_train.py"  # train.py, a little later
    late.write_text(f"import runpy, sys, time\ntime.sleep({LATE})\n"
                    f"sys.argv[0] = {str(ROOT / 'train.py')!r}\n"
                    "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    # Nothing of a launcher that might run the tests themselves: the nodes' launchers set theirs.
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS
           and not k.startswith(("SLURM_", "TORCHELASTIC_"))}
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [
               str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH")])),  # WeightDigest
           "OMP_NUM_THREADS": "1", "NLP_LSTM_DEBUG": "1"}  # tracebacks in the logs
    if sys.platform == "linux":
        env["GLOO_SOCKET_IFNAME"] = "lo"  # gloo's connections stay on the loopback
    procs, logs = [], []
    for node, script in enumerate([ROOT / "train.py", late]):
        if launcher == "torchrun":
            command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
                       "--node-rank", str(node), "--nproc-per-node", "1", "--master-addr",
                       "127.0.0.1", "--master-port", str(port), str(script), *args]
            node_env = env
        else:  # what srun --nodes 2 --ntasks-per-node 1 sets, in the job SLURM_JOB_ID=port
            command = [sys.executable, str(script), *args]
            node_env = {**env, "SLURM_JOB_ID": str(port), "SLURM_STEP_ID": "0",
                        "SLURM_JOB_NAME": "train", "SLURM_NNODES": "2", "SLURM_NTASKS": "2",
                        "SLURM_NTASKS_PER_NODE": "1", "SLURM_NODEID": str(node),
                        "SLURM_PROCID": str(node), "SLURM_LOCALID": "0",
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        log = tmp_path / f"node{node}.log"
        logs.append(log)
        with log.open("w") as out:
            procs.append(subprocess.Popen(
                command, cwd=ROOT, env=node_env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True))  # its own process group: torchrun and its worker
    deadline = time.monotonic() + TIMEOUT
    try:  # until both end, one fails (the other would wait for it) or the time is up
        while time.monotonic() < deadline:
            codes = [p.poll() for p in procs]
            if None not in codes or any(codes):
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    return [(p.returncode, log.read_text(errors="replace")) for p, log in zip(procs, logs,
                                                                              strict=True)]


@pytest.mark.parametrize("launcher", [
    "torchrun", pytest.param("slurm", marks=pytest.mark.slow)])  # the same path, simulated
def test_two_nodes_train_one_run_with_equal_weights(tmp_path: Path, launcher: str) -> None:
    out = tmp_path / "out"
    started = time.monotonic()
    nodes = run_nodes(tmp_path, launcher, [
        "trainer=ddp_multinode", "trainer.accelerator=cpu", *SMALL, f"paths.log_dir={out}",
        f"paths.cache_dir={tmp_path}/cache",
        "+callbacks.digest._target_=test_multinode.WeightDigest"])
    elapsed = time.monotonic() - started
    shown = "\n".join(f"---- node {n} (exit {code}) ----\n{log[-6000:]}"
                      for n, (code, log) in enumerate(nodes))
    assert [code for code, _ in nodes] == [0, 0], shown
    assert "distributed_backend=gloo" in nodes[0][1], shown
    print(f"two nodes ({launcher}): {elapsed:.1f} s")

    # One run directory: torchrun's is named as ever, after node 0's clock (rank 1 started
    # later and agreed on it); SLURM's after the job step. Only the job logs are per rank.
    runs = list((out / "sentiment" / "runs").iterdir())
    name = r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d" if launcher == "torchrun" else r"slurm-\d+\.0"
    assert len(runs) == 1 and re.fullmatch(name, runs[0].name), runs
    run = runs[0]
    assert [p.name for p in out.iterdir()] == ["sentiment"]
    assert sorted(p.name for p in run.iterdir()) == [
        ".hydra", "checkpoints", "config.yaml", "csv", "curve.csv", "digest-rank0.json",
        "digest-rank1.json", "metrics.json", "throughput.json", "train.log",
        "train_ddp_process_1.log"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert [p.name for p in (run / "csv").iterdir()] == ["metrics.csv"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["checkpoint"] == str(run / "checkpoints" / "best.ckpt")
    assert metrics["val/loss"] > 0
    assert json.loads((run / "throughput.json").read_text())["world_size"] == 2
    trainer = OmegaConf.load(run / "config.yaml").trainer
    assert (trainer.num_nodes, trainer.devices, trainer.accelerator) == (2, 1, "cpu")

    # Both ranks trained in one process group: they took the same steps and end equal.
    ranks = [json.loads((run / f"digest-rank{r}.json").read_text()) for r in (0, 1)]
    assert [(d["rank"], d["world_size"], d["num_nodes"]) for d in ranks] == [(0, 2, 2), (1, 2, 2)]
    assert ranks[0]["step"] == ranks[1]["step"] > 0
    assert ranks[0]["end"] == ranks[1]["end"] != ranks[0]["start"]


# ------------------------------------------------------------- the overrides, without launching
SLURM = {"SLURM_NTASKS": "4", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "81", "SLURM_STEP_ID": "0"}
TORCHRUN = {"TORCHELASTIC_RUN_ID": "job7", "TORCHELASTIC_USE_AGENT_STORE": "False",
            "WORLD_SIZE": "2"}


@pytest.mark.parametrize(("env", "expected"), [
    ({**SLURM, "SLURM_PROCID": "0"}, [f"hydra.run.dir={RUN_DIR}slurm-81.0"]),
    ({**SLURM, "SLURM_PROCID": "3"}, [f"hydra.run.dir={RUN_DIR}slurm-81.0",
                                      "hydra.job.name=train_ddp_process_3",
                                      "hydra.output_subdir=null"]),
    ({**TORCHRUN, "RANK": "0"}, [f"hydra.run.dir={RUN_DIR}torchrun-job7"]),
    ({**TORCHRUN, "RANK": "1"}, [f"hydra.run.dir={RUN_DIR}torchrun-job7",
                                 "hydra.job.name=train_ddp_process_1",
                                 "hydra.output_subdir=null"]),
    ({}, []),  # python train.py: Hydra as ever; Lightning's own DDP children get its run dir
    ({**SLURM, "SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, []),  # one task
    ({**SLURM, "SLURM_JOB_NAME": "interactive", "SLURM_PROCID": "0"}, []),  # as Lightning
    ({**TORCHRUN, "WORLD_SIZE": "1", "RANK": "0"}, []),  # one process
])
def test_launched_overrides(env: dict[str, Any], expected: list[str]) -> None:
    assert launched_overrides(["task=sentiment"], env) == expected


def test_launched_overrides_keep_a_given_run_dir_and_sweeps() -> None:
    env = {**TORCHRUN, "RANK": "1"}
    assert launched_overrides(["hydra.run.dir=/shared/run"], env) == [
        "hydra.job.name=train_ddp_process_1", "hydra.output_subdir=null"]
    assert launched_overrides(["-m", "model.embedding_dim=8,16"], env) == []


def test_torchrun_without_a_store_or_run_id_asks_for_one() -> None:
    env = {**TORCHRUN, "TORCHELASTIC_RUN_ID": "none", "RANK": "0"}
    with pytest.raises(ValueError, match="--rdzv-id"):
        launched_overrides([], env)
    assert launched_overrides(["hydra.run.dir=/shared/run"], env) == []
