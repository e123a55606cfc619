"""The Posts API (staff): `/api/v1/videos/` (each post with its figures and growth), one post with its daily
series, the accounts with their followers' series and sync state, and "Sync now". Read-only but for the sync."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response

from inbox.errors import ApplicationError
from tiktok_channel.direct.engagement import selectors, services, tasks
from tiktok_channel.direct.engagement.models import AccountEngagement, Video
from tiktok_channel.direct.models import TikTokConnection


class FiguresGrowthOut(serializers.Serializer):
    since = serializers.DateField()
    views = serializers.IntegerField()
    likes = serializers.IntegerField()
    comments = serializers.IntegerField()
    shares = serializers.IntegerField()


class GrowthOut(serializers.Serializer):
    day = FiguresGrowthOut(allow_null=True, help_text="Since the latest daily snapshot on or before yesterday (UTC).")
    week = FiguresGrowthOut(allow_null=True, help_text="Since the latest daily snapshot on or before 7 days ago.")


class VideoOut(serializers.Serializer):
    id = serializers.IntegerField()
    connection_id = serializers.IntegerField()
    video_id = serializers.CharField(help_text="TikTok's id of the post (a 64-bit number as a string).")
    media_type = serializers.CharField()
    caption = serializers.CharField()
    cover_url = serializers.CharField(help_text="TikTok's temporary cover URL ('' if none).")
    share_url = serializers.CharField()
    posted_at = serializers.DateTimeField(allow_null=True)
    state = serializers.ChoiceField(choices=Video.State.choices)
    removed_at = serializers.DateTimeField(allow_null=True)
    views = serializers.IntegerField()
    likes = serializers.IntegerField()
    comments = serializers.IntegerField()
    shares = serializers.IntegerField()
    figures_at = serializers.DateTimeField(allow_null=True, help_text="When TikTok last gave these figures.")
    growth = GrowthOut()


class VideoDayOut(serializers.Serializer):
    day = serializers.DateField()
    views = serializers.IntegerField()
    likes = serializers.IntegerField()
    comments = serializers.IntegerField()
    shares = serializers.IntegerField()


class VideoDetailOut(VideoOut):
    series = VideoDayOut(many=True, help_text="The post's figures per UTC day (last 90 days).")


class AccountDayOut(serializers.Serializer):
    day = serializers.DateField()
    followers = serializers.IntegerField(allow_null=True)
    total_likes = serializers.IntegerField(allow_null=True)
    videos_count = serializers.IntegerField(allow_null=True)


class FollowersGrowthOut(serializers.Serializer):
    since = serializers.DateField()
    followers = serializers.IntegerField()


class AccountGrowthOut(serializers.Serializer):
    day = FollowersGrowthOut(allow_null=True)
    week = FollowersGrowthOut(allow_null=True)


class AccountOut(serializers.Serializer):
    id = serializers.IntegerField(help_text="The connection's id (filter /api/v1/videos/?connection=).")
    name = serializers.CharField()
    username = serializers.CharField()
    inbox = serializers.CharField()
    state = serializers.ChoiceField(choices=TikTokConnection.State.choices)
    reconnect_url = serializers.CharField(allow_null=True, help_text="Where staff reconnect it, when needed.")
    followers = serializers.IntegerField(allow_null=True)
    total_likes = serializers.IntegerField(allow_null=True)
    videos_count = serializers.IntegerField(allow_null=True)
    synced_at = serializers.DateTimeField(allow_null=True)
    sync_requested_at = serializers.DateTimeField(allow_null=True)
    sync_error = serializers.CharField()
    next_try_at = serializers.DateTimeField(allow_null=True)
    growth = AccountGrowthOut()
    series = AccountDayOut(many=True, help_text="Followers per UTC day (last 90 days).")


class SyncOut(serializers.Serializer):
    queued = serializers.BooleanField()
    sync_requested_at = serializers.DateTimeField()


def video_data(video: Video, growth: dict) -> dict:
    return {
        **{field: getattr(video, field) for field in VideoOut().fields if field not in ("growth",)},
        "growth": growth,
    }


def account_data(connection: TikTokConnection) -> dict:
    engagement = getattr(connection, "engagement", None) or AccountEngagement(connection=connection)
    series = selectors.account_series(connection)
    needs = connection.state != TikTokConnection.State.CONNECTED
    return {
        "id": connection.pk,
        "name": str(connection),
        "username": connection.username,
        "inbox": str(connection.app.inbox),
        "state": connection.state,
        "reconnect_url": connection.app.connect_url if needs else None,
        "followers": engagement.followers,
        "total_likes": engagement.total_likes,
        "videos_count": engagement.videos_count,
        "synced_at": engagement.synced_at,
        "sync_requested_at": engagement.sync_requested_at,
        "sync_error": engagement.sync_error,
        "next_try_at": engagement.next_try_at,
        "growth": selectors.followers_growth(series, engagement.followers),
        "series": series,
    }


class VideoListView(GenericAPIView):
    permission_classes = [IsAdminUser]
    serializer_class = VideoOut

    @extend_schema(
        summary="The TikTok accounts' posts with their latest figures and growth (staff)",
        parameters=[OpenApiParameter("connection", int, description="Only this account's posts")],
        responses=VideoOut(many=True),
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("connection")
        if raw is not None and not raw.isdigit():
            raise ApplicationError(
                "invalid", "connection: must be a connection id", fields={"connection": ["not an id"]}, status=422
            )
        videos = list(
            selectors.videos_visible_to(request.user, connection_id=int(raw) if raw else None)[: selectors.VIDEOS_MAX]
        )
        growth = selectors.growth(videos)
        return Response(VideoOut([video_data(v, growth[v.pk]) for v in videos], many=True).data)


class VideoDetailView(GenericAPIView):
    permission_classes = [IsAdminUser]
    serializer_class = VideoDetailOut

    @extend_schema(summary="One post with its figures per day (staff)", responses=VideoDetailOut)
    def get(self, request: Request, pk: int) -> Response:
        video = selectors.videos_visible_to(request.user).filter(pk=pk).first()
        if video is None:
            raise ApplicationError("not_found", "no such post", status=404)
        data = {**video_data(video, selectors.growth([video])[video.pk]), "series": selectors.video_series(video)}
        return Response(VideoDetailOut(data).data)


class AccountListView(GenericAPIView):
    permission_classes = [IsAdminUser]
    serializer_class = AccountOut

    @extend_schema(
        summary="The TikTok accounts: followers per day, sync state (staff)", responses=AccountOut(many=True)
    )
    def get(self, request: Request) -> Response:
        rows = selectors.connections_visible_to(request.user)
        return Response(AccountOut([account_data(c) for c in rows], many=True).data)


class SyncView(GenericAPIView):
    permission_classes = [IsAdminUser]
    serializer_class = SyncOut

    @extend_schema(summary="Sync this account's posts and figures now (staff)", request=None, responses={202: SyncOut})
    def post(self, request: Request, pk: int) -> Response:
        connection = selectors.connections_visible_to(request.user).filter(pk=pk).first()
        if connection is None:
            raise ApplicationError("not_found", "no such TikTok account", status=404)
        requested_at = services.sync_requested(connection.pk)
        if requested_at is None:
            raise ApplicationError(
                "not_connected", f"TikTok account {connection} is not connected: reconnect it first", status=409
            )
        tasks.schedule_sync(connection.pk)
        return Response(
            SyncOut({"queued": True, "sync_requested_at": requested_at}).data, status=status.HTTP_202_ACCEPTED
        )
