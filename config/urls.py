import os

from csp.decorators import csp_replace, csp_update
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from config.views import healthz, uploaded_media
from inbox.views import LoginView, LogoutView
from tiktok_channel.ads import urls as ads_urls
from tiktok_channel.direct import urls as direct_urls
from tiktok_channel.direct.engagement import urls as engagement_urls

admin.site.site_header = "TikTok Inbox administration"
admin.site.site_title = "TikTok Inbox admin"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("webhooks/infobip/tiktok/", include("tiktok_channel.urls")),
    path("connections/infobip/", include("tiktok_channel.health_urls")),
    path("webhooks/tiktok/", include(direct_urls.webhook_urlpatterns)),
    path("tiktok/", include(direct_urls.urlpatterns)),
    path("api/v1/", include(engagement_urls.api_urlpatterns)),  # the TikTok accounts' posts (staff)
    path("posts/", include("tiktok_channel.direct.publishing.urls")),
    path("webhooks/tiktok-ads/", include(ads_urls.webhook_urlpatterns)),
    path("ads/", include(ads_urls.urlpatterns)),
    path("api/v1/ads/", include("tiktok_channel.ads.api_urls")),
    path("api/v1/", include("inbox.api.urls")),
    path("posts/", include(engagement_urls.page_urlpatterns)),
    # Agents' uploaded images, fetched by TikTok through PUBLIC_BASE_URL (random names, nothing secret).
    # At scale serve MEDIA_ROOT from the proxy or object storage instead (see README).
    re_path(r"^media/(?P<path>uploads/[0-9a-f]{32}\.(?:jpg|png))$", uploaded_media, name="uploaded-media"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The docs page boots Redoc with an inline script and a blob: worker: our CSP plus exactly that. Its images
    # are ours only: Redoc hard-codes a Redocly logo from cdn.redoc.ly (no option turns it off), so the browser
    # blocks that one request instead of telling a third party who reads our docs.
    path(
        "api/docs/",
        csp_replace({"img-src": ["'self'", "data:"]})(
            csp_update({"script-src": ["'unsafe-inline'"], "worker-src": ["blob:"]})(
                SpectacularRedocView.as_view(url_name="api-schema")
            )
        ),
        name="api-docs",
    ),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    # The agents' inbox is the front door (admins still have /admin/).
    path("", include("inbox.urls")),
]

handler404 = "config.views.not_found"
handler500 = "config.views.server_error"

# The benchmark's baseline (bench/run.py): a bare view on the same server, never routed by default.
if os.environ.get("BENCH_BASELINE") == "1":
    from config.views import bench_insert, bench_noop

    urlpatterns.insert(0, path("bench/noop", bench_noop, name="bench-noop"))
    urlpatterns.insert(0, path("bench/insert", bench_insert, name="bench-insert"))
    # The floor again under the webhooks' prefix: served through their short middleware list (config/handlers.py).
    urlpatterns.insert(0, path("webhooks/bench/insert", bench_insert, name="bench-insert-webhook"))
