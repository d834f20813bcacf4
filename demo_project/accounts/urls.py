"""Home, sign-up and user list."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("users/", views.user_list, name="user_list"),
]
