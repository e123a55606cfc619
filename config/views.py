from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt


def uploaded_media(request: HttpRequest, path: str):
    from django.conf import settings
    from django.views.static import serve

    return serve(request, path, document_root=settings.MEDIA_ROOT)


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and `make run`'s readiness check."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - report any database failure as unhealthy
        return JsonResponse({"status": "error", "database": type(exc).__name__}, status=503)
    return JsonResponse({"status": "ok"})


JSON_PREFIXES = ("/api/", "/webhooks/")


def not_found(request: HttpRequest, exception=None):
    """API and webhook clients get the JSON error shape; people get Django's page."""
    if request.path.startswith(JSON_PREFIXES):
        return JsonResponse({"code": "not_found", "message": "Not found.", "fields": {}}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request: HttpRequest):
    if request.path.startswith(JSON_PREFIXES):
        return JsonResponse({"code": "server_error", "message": "Server error.", "fields": {}}, status=500)
    from django.views.defaults import server_error as default_server_error

    return default_server_error(request)


@csrf_exempt
def bench_noop(request: HttpRequest) -> HttpResponse:
    """The benchmark's baseline: a bare view on the same server (routed only when BENCH_BASELINE=1)."""
    return HttpResponse(b"", content_type="text/plain")


@csrf_exempt
def bench_insert(request: HttpRequest) -> HttpResponse:
    """The benchmark's floor of a webhook that stores before it answers: one INSERT of the body, nothing else
    (table `bench_floor`, created by the harness; routed only when BENCH_BASELINE=1)."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_floor (body) VALUES (%s)", [request.body.decode("utf-8", "replace")])
    return HttpResponse(b"", content_type="text/plain")
