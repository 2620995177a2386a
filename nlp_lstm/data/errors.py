"""The one exception type for bad or missing data.

A ``ValueError`` subclass so callers that already guard against bad values catch it;
every message names the file (and line, where there is one) and what was expected.
"""

from __future__ import annotations


class DataError(ValueError):
    """A data file is missing, malformed, or could not be fetched."""
