"""Reporting what a run measured, task-generic: the console report of metrics (``report``),
corpus statistics (``stats``) and training curves compared step by step (``plot``)."""
