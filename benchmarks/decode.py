"""Decoding speed of a translation checkpoint on a whole split: greedy and beam search, batched
and one sentence at a time, with the BLEU of each.

    python -m benchmarks.decode --ckpt PATH [data=multi30k] [split=val] [--beam-size 5]
        [--batch-size 64] [--threads 2] [--single-limit 200]

The split is read through the eval command's config (``data=...`` and ``split=...`` overrides
work as there). Timing covers decoding and detokenizing (sources already tokenized), after one
warm-up batch. "one at a time" decodes the first ``--single-limit`` sentences singly and reports
sentences/s, so it is the in-run baseline of the batched rows.

For scale (issue 10, measured on this 2-core CPU): OpenNMT-py 3.5.1's ``onmt_translate``, beam 5,
batch 64, decodes the Multi30k validation set (1,014 sentences) in 27.6 s.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import replace

import torch

from nlp_lstm.core.cli import bad_input_exits, compose_config
from nlp_lstm.drivers.registry import get_task, load_model
from nlp_lstm.translation.module import corpus_scores


def _decode(model, batches, beam: int) -> tuple[float, list[tuple[int, str]]]:
    start = time.perf_counter()
    out = []
    for batch in batches:
        hyps = model.decode(batch["src"], batch["src_lengths"], beam_size=beam)
        out += [(i, model.detokenize(h[0].tokens))
                for i, h in zip(batch["index"].tolist(), hyps, strict=True)]
    return time.perf_counter() - start, out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decode", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--single-limit", type=int, default=200)
    parser.add_argument("overrides", nargs="*", help="eval config overrides: data=..., split=...")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with bad_input_exits():
        cfg = compose_config("eval", ["task=translation", f"ckpt_path={args.ckpt}",
                                      *args.overrides])
        model = load_model(args.ckpt, task="translation")
        datamodule = get_task("translation").prepare_eval(cfg, model)
        datamodule.options = replace(datamodule.options, batch_size=args.batch_size,
                                     max_tokens=None)
        batches = list(datamodule.dataloader(cfg.split))
        references = [tgt for _, tgt in datamodule._examples(cfg.split)]
        n = len(references)
        datamodule.options = replace(datamodule.options, batch_size=1)
        singles = list(datamodule.dataloader(cfg.split))[: args.single_limit]
        _decode(model, batches[:1], args.beam_size)  # warm-up

        print(f"{cfg.data._target_.rsplit('.', 1)[-1]} {cfg.split}: {n} sentences, "
              f"{args.threads} threads, checkpoint {args.ckpt}")
        print("| decoding | batch | sentences | seconds | sentences/s | BLEU |")
        print("|---|---|---|---|---|---|")
        for beam in (1, args.beam_size):
            name = "greedy" if beam == 1 else f"beam {beam}"
            seconds, out = _decode(model, batches, beam)
            hyps = [h for _, h in sorted(out)]
            bleu = corpus_scores(hyps, references)["bleu"]
            print(f"| {name} | {args.batch_size} | {n} | {seconds:.1f} | {n / seconds:.1f} | "
                  f"{bleu:.2f} |")
            seconds, out = _decode(model, singles, beam)
            print(f"| {name} | 1 | {len(singles)} | {seconds:.1f} | "
                  f"{len(singles) / seconds:.1f} | |")


if __name__ == "__main__":
    main()
