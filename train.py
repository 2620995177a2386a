"""Train a model: ``python train.py task=sentiment data=... model=... trainer=...`` (the same as
``nlp-lstm train``)."""

from nlp_lstm.commands.train import main

if __name__ == "__main__":
    main()
