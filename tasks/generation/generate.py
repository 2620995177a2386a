"""Generate text with a language-model checkpoint.

    python -m tasks.generation.generate --ckpt PATH|--onnx DIR [--provider P] [--prompt TEXT]
        [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R]
        [--seed S] [--num-samples N] [--stop TEXT ...] [--stream]
"""

from nlp_lstm.generation.generate import main

if __name__ == "__main__":
    main()
