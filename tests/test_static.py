"""Production's static files: the inbox's ES modules import each other by their hashed names."""

import re

from django.core.management import call_command


def test_collectstatic_rewrites_module_imports_to_hashed_files(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "config.storage.StaticStorage"}}
    call_command("collectstatic", "--noinput", verbosity=0)
    (main,) = [path for path in (tmp_path / "inbox" / "js").glob("main.*.js")]
    imports = re.findall(r'from "(\./[^"]+)"', main.read_text())
    assert imports and all(re.search(r"\.[0-9a-f]{12}\.js$", name) for name in imports), imports
