"""Where a language model's long-range memory works: the probe accuracy of story-corpus
checkpoints, split by field (name, color, item, place) and by the field's first character
(which only a memory of the opening can predict) against the rest (which the first one
mostly fixes).

    python -m benchmarks.probe CKPT [CKPT ...] [--split val] [--num-documents 1500]

Each split's stories are read as one stream (B = 1), teacher-forced in one forward call; a
prediction is the argmax. The "all" column is the ``val/probe`` metric of training and eval,
except that those read B parallel streams, whose starts cut some stories from their openings:
there "all" comes out a little lower (0.841 against 0.860 for the window model, docs/generation.md).
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch

from nlp_lstm.data.loader import LoaderOptions
from nlp_lstm.drivers.registry import load_model
from nlp_lstm.generation import GenerationDataModule, SyntheticText

FIELDS = ("name", "color", "item", "place")


@torch.no_grad()
def breakdown(ckpt: str, split: str, num_documents: int) -> dict[str, float]:
    model = load_model(ckpt, task="generation")
    source = SyntheticText(num_documents)
    dm = GenerationDataModule(source, cache_dir=None, loader=LoaderOptions(batch_size=1),
                              trained_tokenizer=model.tokenizer.to_json())
    dm.setup()
    ids = dm.stream(split)  # (N,)
    logits, _ = model.net(ids[None, :-1])  # (1, N-1, V), position p predicts token p+1
    hit = (logits[0].argmax(-1) == ids[1:]).tolist()
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    start = 0  # where the story starts in the stream
    gap = len(model.tokenizer.encode(dm.separator))
    for story in source.stories(split):
        for field, (a, b) in zip(FIELDS, story.probe_spans(), strict=True):
            for j in range(a, b):
                correct = hit[start + j - 1]
                for key in (f"{field} first" if j == a else f"{field} rest", "all"):
                    counts[key][0] += correct
                    counts[key][1] += 1
        start += len(story.text) + gap
    return {key: c / n for key, (c, n) in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ckpts", nargs="+")
    parser.add_argument("--split", default="val")
    parser.add_argument("--num-documents", type=int, default=1500)
    args = parser.parse_args()
    keys = ["all", *(f"{f} {part}" for f in FIELDS for part in ("first", "rest"))]
    print("| checkpoint | attention | " + " | ".join(keys) + " |")
    print("|---|---|" + "---:|" * len(keys))
    for ckpt in args.ckpts:
        attention = load_model(ckpt, task="generation").hparams.attention
        scores = breakdown(ckpt, args.split, args.num_documents)
        print(f"| {ckpt} | {attention} | " + " | ".join(f"{scores[k]:.3f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
