"""Settings for the test suite: the normal settings, with Celery run eagerly and fast hashing.

``./sbt test`` sets DATABASE_URL to a throwaway PostgreSQL; tests marked ``broker`` use the
Redis it starts (SBT_TEST_REDIS_URL) with a real worker.
"""

from sbt_site.settings import *

CELERY_TASK_ALWAYS_EAGER = True
# Hashing is not under test; PBKDF2's 1M rounds per client secret would slow every token request.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
