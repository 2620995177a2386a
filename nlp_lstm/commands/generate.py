"""Generate text with a language model (also ``python -m tasks.generation.generate``):

    nlp-lstm generate --ckpt PATH|--onnx DIR [--prompt TEXT] [--max-new-tokens N]
        [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S]
        [--num-samples N] [--stop TEXT ...] [--stream]

Without ``--stream``: one JSON object per sample, ``{"prompt", "text", "tokens", "seconds"}``
(``text`` is the continuation, without the prompt; ``seconds`` the wall time of all samples,
drawn in one batch). With ``--stream``: the prompt and then the continuation appear on stdout
as they are generated (one sample, as Hugging Face's ``TextStreamer``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from nlp_lstm.core.cli import bad_input_exits, fail
from nlp_lstm.drivers.predict import add_model_arguments, load_predictor


def main(argv: Sequence[str] | None = None,
         prog: str = "python -m tasks.generation.generate") -> None:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Continue a prompt with a language model: one JSON object per sample, or "
                    "the text as it is generated with --stream.")
    add_model_arguments(parser, "generation")
    parser.add_argument("--prompt", default="",
                        help="text to continue; default: the training data's document "
                             "separator (a new document)")
    parser.add_argument("--max-new-tokens", type=int, default=200, metavar="N")
    parser.add_argument("--temperature", type=float, default=0.8, metavar="T",
                        help="> 0 samples (default 0.8, as nanoGPT); 0 is greedy (argmax)")
    parser.add_argument("--top-k", type=int, default=0, metavar="K",
                        help="sample among the K most likely tokens (0: all)")
    parser.add_argument("--top-p", type=float, default=1.0, metavar="P",
                        help="nucleus sampling: the smallest set of tokens reaching P (1: off)")
    parser.add_argument("--repetition-penalty", type=float, default=1.0, metavar="R",
                        help="CTRL's penalty on tokens already seen (1: off)")
    parser.add_argument("--seed", type=int, default=None, help="for reproducible samples")
    parser.add_argument("--num-samples", type=int, default=1, metavar="N",
                        help="samples of the prompt, drawn in one batch")
    parser.add_argument("--stop", action="append", default=[], metavar="TEXT",
                        help="end a sample at this text (not included); repeatable")
    parser.add_argument("--stream", action="store_true",
                        help="print the text as it is generated (one sample)")
    args = parser.parse_args(argv)

    with bad_input_exits():
        if args.stream and args.num_samples != 1:
            fail(f"--stream prints one sample as it is generated; got --num-samples "
                 f"{args.num_samples}")
        model = load_predictor(args, "generation")
        settings = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
                    "top_k": args.top_k, "top_p": args.top_p,
                    "repetition_penalty": args.repetition_penalty, "seed": args.seed,
                    "num_samples": args.num_samples, "stop": args.stop}
        if not args.stream:
            for sample in model.generate(args.prompt, **settings):
                print(json.dumps(sample, ensure_ascii=False), flush=True)
            return
        _, cut = model.encode_prompt(args.prompt)
        _, pieces = model.start_generation(args.prompt, **settings)
        sys.stdout.write(args.prompt)
        for (piece,) in pieces:
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        if cut:
            print(f"note: the prompt's first {cut} tokens were dropped (it is read up to "
                  f"{model.max_length} tokens)", file=sys.stderr)
