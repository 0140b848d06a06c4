"""Error types the command line maps to exit codes.

* :class:`UserError` (exit 1): something the user can fix: a bad path, an unreadable or
  corrupt input, an unsupported stream, a bad option. One line, saying what to do.
* :class:`ProcessingError` (exit 2): a failure while processing valid input.
"""

from __future__ import annotations


class UserError(Exception):
    exit_code = 1


class ProcessingError(Exception):
    exit_code = 2
