"""Schemathesis against the live OpenAPI schema: generated inputs for every operation, in-process.

Fails on any 5xx and on any response that does not match the schema. (Driven through schemathesis's
Python API with Hypothesis directly: its pytest fixture integration does not support pytest 9 yet.)
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from tests.inbox.helpers import receive

TOKEN = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def keep_test_connection():
    """Like Django's test client: don't close the test's database connection when a request ends."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db, django_user_model, keep_test_connection):
    from config.wsgi import application
    from inbox.models import Inbox

    inbox = Inbox.objects.create(name="Support")
    agent = django_user_model.objects.create_user("fuzzer", password="pw")
    inbox.members.add(agent)
    for n in range(3):
        receive(inbox, f"user{n}", 1, text=f"message {n}")
    Token.objects.create(user=agent, key=TOKEN)
    return schemathesis.openapi.from_wsgi("/api/schema/", application)


def test_every_operation_conforms(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 11
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
        )
        def conforms(case):
            # Every case carries our valid token, so "accepts invalid (generated) auth" cannot apply (refusing
            # anonymous callers is tested per endpoint in test_api.py). "Schema-valid data must be accepted"
            # is a heuristic that ids of agents or conversations that do not exist (rightly 404/422) defeat.
            case.call_and_validate(
                headers={"Authorization": f"Token {TOKEN}"}, excluded_checks=[ignored_auth, positive_data_acceptance]
            )

        conforms()
