"""The one error type a user sees.

Anything the user can fix (params, input files, corpora, checkpoints, URLs) raises
`UserError` with a message that names the key / file / line and what is allowed.
Stage entry points turn it into one line on stderr and exit code 2 (see stages/_cli.py);
everything else is a bug and keeps its traceback.
"""

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Bad input: the message is the whole story, no traceback needed."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM, raised where stopping loses nothing; `kept` says what was kept (e.g.
    the checkpoint a re-run resumes from). A BaseException, like KeyboardInterrupt: no
    `except Exception` swallows it. Stage entry points exit with 128 + the signal number."""

    def __init__(self, signum: int, kept: str = ""):
        super().__init__(signum, kept)
        self.signum, self.kept = signum, kept
