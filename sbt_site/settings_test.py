"""Settings for the test suite: the normal settings, with Celery run eagerly and fast hashing.

``./sbt test`` sets DATABASE_URL to a throwaway PostgreSQL; tests marked ``broker`` use the
Redis it starts (SBT_TEST_REDIS_URL) with a real worker.
"""

from sbt_site import conf
from sbt_site.settings import *

CELERY_TASK_ALWAYS_EAGER = True
# Hashing is not under test; PBKDF2's 1M rounds per client secret would slow every token request.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Webhook tests deliver to receivers on loopback, whatever SBT_ENV or EVENT_WEBHOOK_ALLOWED_NETWORKS
# the shell running the tests has. Set as the default rather than in SBT because many tests
# replace SBT whole (settings.SBT = {...}); the egress tests narrow it with their own SBT.
conf.DEFAULTS["EVENT_WEBHOOK_ALLOWED_NETWORKS"] = ["127.0.0.0/8", "::1/128"]

# Tests run threads that each keep their connection for many "requests" (no request end gives it
# back to the pool): a pool as large as the most threads a test starts lets none wait past timeout.
if DATABASES["default"].get("OPTIONS", {}).get("pool"):
    DATABASES["default"]["OPTIONS"]["pool"]["max_size"] = 32
