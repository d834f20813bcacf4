"""Keep signaltrace's own failures out of the host application.

signaltrace runs inside every signal dispatch. A bug in it must never change what
Django does, so internal errors are logged once per distinct place and swallowed.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("signaltrace")

_reported: set[str] = set()


def report_internal_error(where: str) -> None:
    """Log the exception being handled as an internal signaltrace error.

    Call from an ``except`` block. The full traceback is logged the first time a
    given ``where`` fails; later failures of the same place log one short line, so a
    broken hot path does not flood the logs.
    """
    if where in _reported:
        logger.debug("signaltrace internal error in %s (repeated)", where)
        return
    _reported.add(where)
    logger.exception(
        "signaltrace internal error in %s; the signal was dispatched as Django "
        "would, but this dispatch may be missing from the trace",
        where,
    )
