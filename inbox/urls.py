"""The agents' pages (the data comes from /api/v1/, live hints from /ws/inbox/)."""

from django.urls import path

from inbox import views
from inbox.automation.views import automation_page, csat_page
from inbox.reports.views import reports_page

app_name = "inbox"

urlpatterns = [
    path("", views.inbox_page, name="home"),
    path("c/<int:pk>/", views.inbox_page, name="conversation"),
    path("reports/", reports_page, name="reports"),
    # The customers' satisfaction survey: public, opened by the signed link of the CSAT message.
    path("csat/<str:token>/", csat_page, name="csat"),
    path("automation/", automation_page, name="automation"),
]
