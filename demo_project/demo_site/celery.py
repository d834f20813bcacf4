"""The demo's Celery app, as Celery's Django guide sets it up: settings under ``CELERY_``,
tasks from each installed app's ``tasks.py``.

The broker and the result store live in this process's memory (settings.py) and the
worker is a thread of the web process (``looplab/worker.py``): the demo needs no
server. Celery is the ``celery`` extra; without it ``demo_site/__init__.py`` skips this
module and the loop lab's task scenarios say so.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")

# DjangoTask (delay_on_commit, Celery 5.4+) is what Celery's Django fix-up installs when
# DJANGO_SETTINGS_MODULE is set; named here so it does not depend on that.
app = Celery("demo_site", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Every thread's current app: a runserver thread would otherwise get Celery's fallback
# app, whose broker is amqp://localhost.
app.set_default()
