"""OpenAPI generation: every operation documents the one error shape for the codes it can answer."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers


class ErrorOut(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. reply_window_closed")
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


ERROR_CODES = ["400", "401", "403", "404", "409", "422"]


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction: str = "response"):
        responses = super()._get_response_bodies(direction)
        for code in ERROR_CODES:
            if code == "409" and self.method == "GET":
                continue
            if code == "400" and not self._paginated():  # 400: a forged or stale pagination cursor
                continue
            responses.setdefault(code, self._get_response_for_code(ErrorOut, code, direction=direction))
        return responses

    def _paginated(self) -> bool:
        return (
            self.method == "GET" and getattr(self.view, "pagination_class", None) is not None and self._is_list_view()
        )
