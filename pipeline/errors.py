"""The one error type a user sees.

Anything the user can fix (params, input files, corpora, checkpoints, URLs) raises
`UserError` with a message that names the key / file / line and what is allowed.
Stage entry points turn it into one line on stderr and exit code 2 (see stages/_cli.py);
everything else is a bug and keeps its traceback.
"""

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Bad input: the message is the whole story, no traceback needed."""
