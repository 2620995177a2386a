"""Lightning modules, one per model; each builds its own network from plain hyperparameters."""

from nlp_lstm.models.bow import BagOfWordsClassifier
from nlp_lstm.models.classifier import TextClassifier
from nlp_lstm.models.sentiment import SentimentClassifier

# The models a checkpoint may name, per task. Loading resolves names here and nowhere else, so a
# checkpoint can never make us import arbitrary code.
MODELS: dict[str, dict[str, type[TextClassifier]]] = {
    "sentiment": {cls.__name__: cls for cls in (SentimentClassifier, BagOfWordsClassifier)},
}

__all__ = ["MODELS", "BagOfWordsClassifier", "SentimentClassifier", "TextClassifier"]
