"""The demo site's project package; it loads the Celery app when the ``celery`` extra is installed."""

from importlib.util import find_spec

# Optional so the demo still runs where only its other extras are installed (the
# production benchmark's virtualenv): then the lab's task scenarios say Celery is missing.
celery_app = None
if find_spec("celery") is not None:
    from demo_site.celery import app as celery_app

__all__ = ["celery_app"]
