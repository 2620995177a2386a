"""nlp-lstm: LSTM models for NLP, trained with Lightning and configured with Hydra."""

import warnings

__version__ = "0.2.0"

# Lightning 2.6 trips over a deprecation in torch's pytree on import; it is noise for our users.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=Warning)
