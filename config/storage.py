"""Static files for production: hashed names, also inside the inbox's ES modules' `import` statements.

Django rewrites `import … from "./api.js"` to the hashed file only when asked to; without it a browser would
load a new main.js with the old, long-cached modules it imports.
"""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
