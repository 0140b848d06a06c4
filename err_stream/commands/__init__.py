"""Subcommands of ``err-stream``: one module each with ``HELP``, ``add_arguments`` and ``run``."""
