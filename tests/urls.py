"""URLs of the test project."""

from django.urls import include, path

from tests.testapp import panel_views, views

urlpatterns = [
    path("items/create/", views.create_item, name="create_item"),
    path("items/create-async/", views.create_item_async, name="create_item_async"),
    path("edges/<str:using>/save/", views.save_item, name="save_item"),
    path("edges/<str:using>/save-then-fail/", views.save_item_then_fail, name="save_item_then_fail"),
    path("edges/<str:using>/save-in-block-async/", views.save_item_in_block, name="save_item_in_block"),
    path("panel/", include(panel_views.urlpatterns)),
    # debug_toolbar_urls() is empty when DEBUG is off at import, as under pytest.
    path("__debug__/", include("debug_toolbar.urls")),
]
