"""The Celery application.

Tasks are discovered in each app's ``tasks.py``. Broker and schedule settings live in
``settings.py`` under the ``CELERY_`` prefix; periodic tasks are stored by django-celery-beat
and edited in the admin.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sbt_site.settings")

app = Celery("sbt_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Tasks carry the log context (request id, tenant, client) of whoever enqueued them.
from sbt_site import tasklog  # noqa: E402, F401
