"""The test suite: SQLite + embedded Redis by default, PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set."""

import os

from .base import *  # noqa: F403
from .base import BASE_DIR, RUN_DIR, database_from_env, env

DEBUG = False
SECRET_KEY = "test-only-secret-key"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1", *env.list("E2E_ALLOWED_HOSTS", default=[])]
DATABASES = {"default": database_from_env(f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so servers and workers started by the tests see the same data; one per run,
    # so two runs on one machine do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(RUN_DIR / f"test-{os.getpid()}.sqlite3")}
# Unit tests post through Django's test client and look at the effects at once; the e2e stack runs deferred,
# with a processor.
WEBHOOK_PROCESSING = env.str("WEBHOOK_PROCESSING", default="inline")
# Likewise the report roll-ups: refreshed right after each commit (tests of the deferred mode set it).
REPORTS_ROLLUPS = env.str("REPORTS_ROLLUPS", default="inline")
FIELD_ENCRYPTION_KEYS = ["dGVzdC1vbmx5LWZlcm5ldC1rZXktMzItYnl0ZXMhISE="]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
MEDIA_ROOT = RUN_DIR / "test-media"
# The end-to-end stack (tests/e2e/conftest.py) points its web server and worker at their real address. Its
# own name, so a PUBLIC_BASE_URL in a developer's .env never leaks into the suite.
PUBLIC_BASE_URL = env("E2E_PUBLIC_BASE_URL", default="https://inbox.example.test").rstrip("/")
