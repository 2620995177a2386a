#!/usr/bin/env bash
# GPU smoke test: each available task trains for about a minute on one GPU, in fp32 and in fp16
# mixed precision, and prints its throughput (tokens/s) from Lightning's step timings.
#   bash benchmarks/gpu_smoke.sh [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SECONDS_PER_RUN=${1:-60}
TASKS=$(ls conf/task | sed 's/\.yaml$//')
out=$(mktemp -d)
printf "%-12s %-10s %12s %10s\n" task precision tokens/s val_metric
for task in $TASKS; do
  for precision in 32-true 16-mixed; do
    dir="$out/$task-$precision"
    "$PY" train.py task="$task" trainer=gpu trainer.precision="$precision" \
      trainer.max_time="00:00:$(printf %02d "$SECONDS_PER_RUN"):00" trainer.max_epochs=1000 \
      test=false hydra.run.dir="$dir" trainer.enable_progress_bar=false >"$dir.log" 2>&1 || {
        echo "$task $precision failed: see $dir.log"; continue; }
    "$PY" - "$dir" "$task" "$precision" <<'PYEOF'
import json, sys
from pathlib import Path
run, task, precision = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
stats = json.loads((run / "throughput.json").read_text())
metrics = json.loads((run / "metrics.json").read_text())
monitor = next((k for k in metrics if k.startswith("val/") and not k.endswith("loss")), "")
print(f"{task:<12} {precision:<10} {stats['tokens_per_second']:>12,.0f} "
      f"{metrics.get(monitor, float('nan')):>10.4f}")
PYEOF
  done
done
