"""/metrics in Prometheus's text format."""

from django.http import HttpResponse


def metrics(request):
    return HttpResponse(status=404)
