import pytest

from inbox.models import Inbox
from tests.inbox.helpers import receive


@pytest.fixture
def world(django_user_model):
    support = Inbox.objects.create(name="Support")
    other = Inbox.objects.create(name="Other team")
    agent = django_user_model.objects.create_user("agent", password="pw")
    colleague = django_user_model.objects.create_user("colleague", password="pw")
    outsider = django_user_model.objects.create_user("outsider", password="pw")
    admin = django_user_model.objects.create_superuser("admin", password="pw")
    support.members.add(agent, colleague)
    other.members.add(outsider)
    alice = receive(support, "alice", 1, text="Where is my order?", minutes_ago=30)
    bob = receive(support, "bob", 1, text="Do you ship to Berlin?", minutes_ago=10)
    carol = receive(other, "carol", 1, text="secret of the other team", minutes_ago=5)
    return {
        "support": support,
        "other": other,
        "agent": agent,
        "colleague": colleague,
        "outsider": outsider,
        "admin": admin,
        "alice": alice,
        "bob": bob,
        "carol": carol,
    }
