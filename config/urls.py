from csp.decorators import csp_exempt
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from config.views import healthz, uploaded_media

admin.site.site_header = "TikTok Inbox administration"
admin.site.site_title = "TikTok Inbox admin"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("webhooks/infobip/tiktok/", include("tiktok_channel.urls")),
    path("api/v1/", include("inbox.api.urls")),
    # Agents' uploaded images, fetched by TikTok through PUBLIC_BASE_URL (random names, nothing secret).
    # At scale serve MEDIA_ROOT from the proxy or object storage instead (see README).
    re_path(r"^media/(?P<path>uploads/[0-9a-f]{32}\.(?:jpg|png))$", uploaded_media, name="uploaded-media"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The docs page boots Redoc with an inline script (and a blob: worker): the one page without our CSP.
    path("api/docs/", csp_exempt()(SpectacularRedocView.as_view(url_name="api-schema")), name="api-docs"),
    # The agent inbox UI arrives with its own issue; until then the front door is the admin.
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]

handler404 = "config.views.not_found"
handler500 = "config.views.server_error"
