"""The demo's URLs without the toolbar's (``benchmarks/production_settings.py``)."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.urls")),
    path("lab/", include("looplab.urls")),
]
