"""HTTP views: a health check and a read-only notes list."""

from django.http import HttpRequest, JsonResponse

NOTES = [{"id": 1, "text": "ship it"}]


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and Django is configured."""
    return JsonResponse({"status": "ok"})


def notes(request: HttpRequest) -> JsonResponse:
    """All notes."""
    return JsonResponse({"notes": NOTES})
