"""What every task is built against: the ``Task`` contract (``task``), safe checkpoint reading
(``checkpoint``) and the command-line plumbing (``cli``: the configs' folder, config
composition, clean failures)."""
