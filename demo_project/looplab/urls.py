"""The loop lab: an index page and one POST endpoint per scenario."""

from django.urls import path

from looplab import views

app_name = "looplab"
urlpatterns = [
    path("", views.index, name="index"),
    path("photo/", views.photo_upload, name="photo"),
    path("<slug:slug>/", views.run, name="run"),
]
