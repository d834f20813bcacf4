"""URLs of the test project."""

from django.urls import path

from tests.testapp import views

urlpatterns = [
    path("items/create/", views.create_item, name="create_item"),
    path("items/create-async/", views.create_item_async, name="create_item_async"),
]
