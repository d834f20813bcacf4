"""URLs of the test project."""

from django.urls import include, path

from tests.testapp import panel_views, views

urlpatterns = [
    path("items/create/", views.create_item, name="create_item"),
    path("items/create-async/", views.create_item_async, name="create_item_async"),
    path("panel/", include(panel_views.urlpatterns)),
    # debug_toolbar_urls() is empty when DEBUG is off at import, as under pytest.
    path("__debug__/", include("debug_toolbar.urls")),
]
