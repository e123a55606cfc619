from django.urls import path

from tiktok_channel.health_views import connection_test, connections_health

urlpatterns = [
    path("", connections_health, name="connections-health"),
    path("<int:account_id>/test/", connection_test, name="connection-test"),
]
