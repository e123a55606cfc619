"""Local development: the zero-setup default of `make run` (SQLite file, embedded Redis)."""

from .base import *  # noqa: F403
from .base import BASE_DIR, TIKTOK_DIRECT_SCOPES, database_from_env, env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-secret-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
DATABASES = {"default": database_from_env(f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# A fixed, public development key: never use it for real secrets (production requires its own).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=["ZGV2LW9ubHktZmVybmV0LWtleS1ub3Qtc2VjcmV0ISE="])
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Mail (e.g. "reconnect this TikTok account") is printed by the process that sends it, not sent: no SMTP needed.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# The demo (make run) posts to the TikTok sandbox from /posts/new/: its consent asks for posting (video.publish) too.
TIKTOK_DIRECT_SCOPES = env.list("TIKTOK_DIRECT_SCOPES", default=[*TIKTOK_DIRECT_SCOPES, "video.publish"])
# The TikTok sandbox of `make run` serves its videos' covers over plain http on loopback: let the inbox show them.
CSP_IMG_HOSTS = [*CSP_IMG_HOSTS, "http://127.0.0.1:*", "http://localhost:*"]  # noqa: F405
CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"] = ["'self'", "data:", "blob:", *CSP_IMG_HOSTS]  # noqa: F405
