"""Staff pages: /posts/new/ (the form: privacy options from TikTok's creator_info) and /posts/uploads/ (every post
with its status and progress; the page fills itself from /posts/uploads/data/ and follows `post.updated` hints on the
inbox websocket). /posts/media/<name> serves a photo post's images to TikTok, which pulls them (§4.4)."""

from __future__ import annotations

import re
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from tiktok_channel.direct.models import TikTokConnection
from tiktok_channel.direct.publishing import services, uploader
from tiktok_channel.direct.publishing.client import PostingError
from tiktok_channel.direct.publishing.models import Post

PRIVACY_LABELS = {
    "PUBLIC_TO_EVERYONE": "Everyone",
    "MUTUAL_FOLLOW_FRIENDS": "Friends (mutual followers)",
    "FOLLOWER_OF_CREATOR": "Followers",
    "SELF_ONLY": "Only me",
}
MODERATION = (
    "TikTok processes the file, then its moderation checks the post: usually about a minute, sometimes hours. "
    "The post becomes public only after that."
)


def staff_only(view):
    @login_required(login_url="login")
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied("staff only")
        return view(request, *args, **kwargs)

    return wrapped


def _connection(request: HttpRequest, connections: list[TikTokConnection]) -> TikTokConnection | None:
    wanted = request.POST.get("connection") or request.GET.get("connection")
    for connection in connections:
        if str(connection.pk) == wanted:
            return connection
    return connections[0] if connections else None


@staff_only
def new_post(request: HttpRequest) -> HttpResponse:
    connections = list(TikTokConnection.objects.select_related("app").filter(state=TikTokConnection.State.CONNECTED))
    connection = _connection(request, connections)
    creator, creator_error = {}, ""
    if connection is not None:
        try:
            creator = uploader.creator_info(connection)
        except PostingError as exc:
            creator_error = exc.reason
    options = [o for o in creator.get("privacy_level_options") or [] if isinstance(o, str)]
    context = {
        "connections": connections,
        "connection": connection,
        "creator": creator,
        "creator_error": creator_error,
        "privacy_options": [(o, PRIVACY_LABELS.get(o, o)) for o in options],
        "moderation": MODERATION,
        "values": request.POST,
    }
    if request.method == "POST" and connection is not None and not creator_error:
        try:
            services.post_create(
                connection=connection,
                kind=request.POST.get("kind", Post.Kind.VIDEO),
                title=request.POST.get("title", "").strip(),
                description=request.POST.get("description", "").strip(),
                privacy_level=request.POST.get("privacy_level", ""),
                privacy_options=options,
                disable_comment=bool(request.POST.get("disable_comment")),
                disable_duet=bool(request.POST.get("disable_duet")),
                disable_stitch=bool(request.POST.get("disable_stitch")),
                files=request.FILES.getlist("file"),
                creator=creator,
                user=request.user,
            )
        except services.PostRefused as exc:
            context["error"] = str(exc)
            context["error_field"] = exc.field
            return render(request, "publishing/new.html", context, status=400)
        return redirect(reverse("publishing:uploads"), permanent=False)
    status = 400 if request.method == "POST" else 200
    if request.method == "POST":
        context["error"] = creator_error or "connect a TikTok account first"
    return render(request, "publishing/new.html", context, status=status)


@staff_only
def uploads(request: HttpRequest) -> HttpResponse:
    config = {"data": reverse("publishing:uploads_data"), "ws_path": "/ws/staff/", "new": reverse("publishing:new")}
    return render(request, "publishing/uploads.html", {"uploads_config": config})


def status_note(post: Post) -> str:
    """What the page says under the status: the server decides, the page shows."""
    if post.status == Post.Status.DRAFT:
        return post.reason or "Waiting for a worker to start the upload."
    if post.status == Post.Status.UPLOADING:
        done = f"Uploaded {post.chunks_done} of {post.chunk_count} chunks."
        return f"{done} {post.reason}".strip()
    if post.status == Post.Status.PROCESSING:
        if post.kind == Post.Kind.PHOTO:
            return "TikTok is downloading the photos. " + MODERATION
        return MODERATION
    if post.status == Post.Status.PUBLISHED:
        if post.tiktok_post_id:
            return f"Public on TikTok (post {post.tiktok_post_id})."
        return (
            "Published. TikTok's moderation is still checking it (usually about a minute, sometimes hours); "
            "until this app passes TikTok's audit, its posts are visible only to the account."
        )
    return post.reason or "TikTok gave no reason."


def as_row(post: Post) -> dict:
    return {
        **services.as_live_event(post),
        "kind": post.kind,
        "title": post.title,
        "file_name": post.original_name,
        "account": str(post.connection),
        "status_label": post.get_status_display(),
        "privacy": PRIVACY_LABELS.get(post.privacy_level, post.privacy_level),
        "note": status_note(post),
        "created_at": post.created_at.isoformat(),
        "tiktok_post_id": post.tiktok_post_id,
    }


@staff_only
def uploads_data(request: HttpRequest) -> JsonResponse:
    posts = Post.objects.select_related("connection")[:100]
    return JsonResponse({"posts": [as_row(post) for post in posts]})


MEDIA_NAME = re.compile(r"^[0-9a-f]{32}\.(?:jpg|webp)$")


def post_media(request: HttpRequest, name: str) -> FileResponse:
    """A photo post's image for TikTok to pull (public: random names, as the agents' uploads)."""
    if not MEDIA_NAME.match(name):
        raise Http404("no such file")
    path = services.media_path(f"{services.POST_MEDIA_DIR}/{name}")
    if not path.is_file():
        raise Http404("no such file")
    content_type = "image/jpeg" if name.endswith(".jpg") else "image/webp"
    return FileResponse(path.open("rb"), content_type=content_type)
