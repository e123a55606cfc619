"""`/api/v1/reports/` (included by inbox/api/urls.py)."""

from django.urls import path

from inbox.reports import api

urlpatterns = [
    path("", api.ReportIndexView.as_view(), name="report-index"),
    *(path(f"{key}/", view.as_view(), name=f"report-{key}") for key, view in api.CHART_VIEWS.items()),
]
