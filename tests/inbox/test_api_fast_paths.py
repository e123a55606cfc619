"""The list request's cheaper paths (issue 20, bench/README.md "Lists and threads", sixth session) give DRF's own
answers: token authentication in one plain statement, the list's filters when none is given, times shown without
DRF's per-value lookups, and the page's times read by psycopg's C loader."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import exceptions, serializers
from rest_framework.authentication import TokenAuthentication as DrfTokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from inbox.api.authentication import TokenAuthentication
from inbox.api.serializers import _datetimes_of_page
from inbox.api.views import ConversationFilters, MessageFilters, _parse_filters
from inbox.models import Conversation
from inbox.selectors import conversation_list, conversation_list_queryset
from tests.inbox.helpers import api, receive

pytestmark = pytest.mark.django_db


def outcome(authentication, header: str | None):
    """What an authentication class answers for an `Authorization` header: (user id, token key), None (not its
    scheme), or the refusal's class and message."""
    factory = APIRequestFactory()
    request = Request(factory.get("/", **({"HTTP_AUTHORIZATION": header} if header is not None else {})))
    try:
        answer = authentication.authenticate(request)
    except exceptions.APIException as exc:
        return type(exc).__name__, str(exc.detail), exc.status_code
    if answer is None:
        return None
    user, token = answer
    return user.pk, user.username, user.is_active, token.key, token.user_id, token.created


def test_every_header_gets_drf_s_answer(world):
    token = Token.objects.create(user=world["agent"])
    inactive = Token.objects.create(user=world["colleague"])
    world["colleague"].is_active = False
    world["colleague"].save()
    headers = [
        None,
        "",
        "Bearer abc",
        "Token",
        "Token a b",
        f"Token {token.key}",
        f"token {token.key}",  # the keyword is case-insensitive in DRF
        f"Token {token.key.upper()}",  # the key is not
        f"Token {token.key}x",
        f"Token {inactive.key}",
        "Token \u00e9t\u00e9",
    ]
    for header in headers:
        ours, drf = outcome(TokenAuthentication(), header), outcome(DrfTokenAuthentication(), header)
        assert ours == drf, header
    assert outcome(TokenAuthentication(), f"Token {token.key}")[:2] == (world["agent"].pk, "agent")
    assert outcome(TokenAuthentication(), f"Token {inactive.key}") == (
        "AuthenticationFailed",
        "User inactive or deleted.",
        401,
    )


def test_a_nul_in_the_key_is_an_invalid_token_not_a_500(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token abc\x00def")
    response = client.get("/api/v1/conversations/")
    # 403, not 401: DRF answers a failed authentication with the first class's scheme, and the session's has none.
    assert response.status_code == 403
    assert response.json()["message"] == "Invalid token."


def test_the_user_is_a_full_model_instance(world):
    Token.objects.create(user=world["admin"])
    user, token = TokenAuthentication().authenticate_credentials(Token.objects.get(user=world["admin"]).key)
    assert user == world["admin"] and user.is_superuser and user.has_perm("anything")  # a superuser's rule
    assert token.user is user and not user._state.adding and user._state.db == "default"
    user.first_name = "Ada"
    user.save(update_fields=["first_name"])  # a loaded row: an UPDATE, not an INSERT
    assert type(user).objects.get(pk=user.pk).first_name == "Ada"


def test_a_deleted_token_or_a_deactivated_user_is_refused_on_the_next_request(world):
    """No cache: what DRF's class refuses is refused at once (in every process, since each request reads the row)."""
    token = Token.objects.create(user=world["agent"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/v1/conversations/").status_code == 200
    world["agent"].is_active = False
    world["agent"].save()
    refused = client.get("/api/v1/conversations/")
    assert refused.status_code == 403 and refused.json()["message"] == "User inactive or deleted."
    world["agent"].is_active = True
    world["agent"].save()
    assert client.get("/api/v1/conversations/").status_code == 200
    token.delete()
    refused = client.get("/api/v1/conversations/")
    assert refused.status_code == 403 and refused.json()["message"] == "Invalid token."


def test_token_authentication_is_one_statement_and_the_list_count_stays_constant(world):
    token = Token.objects.create(user=world["agent"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    counts = {}
    for n, page_size in enumerate((10, 50)):
        for i in range(30 if n == 0 else 0):
            receive(world["support"], f"many{i}", 1)
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/api/v1/conversations/", {"page_size": page_size})
        assert response.status_code == 200
        assert len(response.json()["results"]) == page_size if page_size == 10 else 32
        counts[page_size] = len(queries)
        auth = [q["sql"] for q in queries if '"authtoken_token"' in q["sql"]]
        assert len(auth) == 1 and '"auth_user"' in auth[0]
    assert counts[10] == counts[50] == (3 if connection.vendor == "postgresql" else 4)


@pytest.mark.parametrize("filters", [ConversationFilters, MessageFilters])
def test_no_filter_gives_the_serializer_s_defaults_and_a_fresh_dict(filters):
    expected = filters(data={})
    assert expected.is_valid()
    request = Request(APIRequestFactory().get("/", {"cursor": "x", "page_size": "10"}))
    first = _parse_filters(filters, request)
    assert first == dict(expected.validated_data)
    first["status"] = "open"  # a caller that changes its dict changes nobody else's
    assert _parse_filters(filters, request) == dict(expected.validated_data)


def test_a_given_filter_is_still_validated(world):
    response = api(world["agent"]).get("/api/v1/conversations/", {"ordering": "nope"})
    assert response.status_code == 422 and set(response.json()["fields"]) == {"ordering"}
    open_only = api(world["agent"]).get("/api/v1/conversations/", {"status": "resolved"})
    assert open_only.status_code == 200 and open_only.json()["results"] == []


UTC = dt.UTC
TIMES = [
    dt.datetime(2026, 11, 30, 21, 40, 5, 123456, tzinfo=UTC),
    dt.datetime(2026, 11, 30, 21, 40, 5, tzinfo=UTC),  # no microseconds: isoformat leaves them out
    dt.datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC),  # an hour before Berlin's clocks go forward
    dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # Berlin's repeated hour
    dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    dt.datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("America/St_Johns")),
    dt.datetime(2026, 7, 1, 12, 0),  # naive: DRF's own rule (made aware in the current zone)
]


@pytest.mark.parametrize("zone", [None, "Europe/Berlin", "America/St_Johns", "Asia/Kathmandu"])
def test_times_are_shown_as_drf_s_field_shows_them(zone):
    def both():
        shown = _datetimes_of_page()
        field = serializers.DateTimeField()
        return [shown(value) for value in TIMES] + [shown(None)], [field.to_representation(v) for v in TIMES] + [None]

    if zone is None:
        ours, drf = both()
    else:
        with timezone.override(ZoneInfo(zone)):
            ours, drf = both()
    assert ours == drf
    assert (zone is None) == ours[0].endswith("Z")


def test_a_time_out_of_range_fails_as_drf_s_field_does():
    value = dt.datetime(1, 1, 1, 0, 0, tzinfo=UTC)
    with timezone.override(ZoneInfo("America/New_York")):
        shown = _datetimes_of_page()
        with pytest.raises(serializers.ValidationError) as ours:
            shown(value)
        with pytest.raises(serializers.ValidationError) as drf:
            serializers.DateTimeField().to_representation(value)
    assert ours.value.detail == drf.value.detail


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQL page is PostgreSQL's (SQLite: the ORM)")
def test_the_page_s_times_are_the_orm_s(world):
    receive(world["support"], "dora", 1, minutes_ago=3)
    page = list(conversation_list(user=world["agent"]).order_by("-last_activity_at", "-id")[:10])
    orm = {row["id"]: row for row in conversation_list_queryset(user=world["agent"])}
    assert len(page) == 3
    for row in page:
        for name in ("last_inbound_at", "last_activity_at", "last_message_at"):
            value = row[name]
            assert value == orm[row["id"]][name] and value.tzinfo is dt.UTC, name
            assert str(value) == str(orm[row["id"]][name])  # a cursor's position is the value's text
    assert Conversation.objects.filter(pk__in=[row["id"] for row in page]).count() == 3
