"""One tuning worker process, started by stage tune (`--workers N`, or `--join` on any machine).

    python -m pipeline.tuning.worker     # stdin: {"setup": Setup.to_json(), "worker": k, "deadline": t}

It opens the study (which must exist), runs WAITING trials until the study is done, and exits
0; a UserError is one line and exit 2; SIGINT / SIGTERM stop the current trial at a batch
boundary with a checkpoint, queue it again, and exit 130 / 143.
"""

from __future__ import annotations

import json
import logging
import signal
import sys

from pipeline.errors import EXIT_USER_ERROR, Interrupted, UserError
from pipeline.tuning.study import Setup, opened, work, worker_label


def _interrupted(signum, frame):
    raise Interrupted(signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupted)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    msg = json.loads(sys.stdin.read())
    setup, k = Setup.from_json(msg["setup"]), msg["worker"]
    try:
        with opened(setup, create=False, worker=k) as (storage, study):
            work(setup, storage, study, label=worker_label(k), deadline=msg["deadline"])
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except (KeyboardInterrupt, Interrupted) as e:
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        print(f"tuning worker {k} interrupted ({signal.Signals(signum).name}): its trial is queued again",
              file=sys.stderr)
        sys.exit(128 + signum)


if __name__ == "__main__":
    main()
