"""URLs of the demo site: accounts pages, the loop lab and the toolbar."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.urls")),
    path("lab/", include("looplab.urls")),
    # Not debug_toolbar_urls(): it returns [] when DEBUG is off at import (under tests).
    path("__debug__/", include("debug_toolbar.urls")),
]
