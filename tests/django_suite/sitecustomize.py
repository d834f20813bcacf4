"""Loaded by Python at startup when this folder is on PYTHONPATH.

Installs signaltrace and records for the whole process before Django's own test
suite starts, so every dispatch of Django's tests goes through the hooks. The
trace's cap is raised so recording stays on for the whole run; at exit the number
of recorded dispatches is printed, proving the hooks were really in the path.
"""

import atexit
import os

if os.environ.get("SIGNALTRACE_SUITE_RECORD") == "1":
    import signaltrace
    from signaltrace import conf

    conf.DEFAULTS["MAX_DISPATCHES"] = 10_000_000
    signaltrace.install()
    _recording = signaltrace.record()
    _trace = _recording.__enter__()

    def _report() -> None:
        print(
            f"signaltrace: installed={signaltrace.is_installed()} "
            f"recorded={len(_trace)} dispatches in the main context"
        )

    atexit.register(_report)
