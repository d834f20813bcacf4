"""Sign-up (the Profile appears by signal), the user list, and the home page."""

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from looplab.tracing import summarize

import signaltrace
from accounts.forms import SignUpForm
from accounts.models import Profile


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/home.html")


def signup(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST: create the User inside ``signaltrace.record()`` and show the trace."""
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with signaltrace.record() as trace:
            user = form.save()
        # The receiver made the Profile already; only the bio is ours to fill in.
        profile = Profile.objects.get(user=user)
        profile.bio = form.cleaned_data["bio"]
        profile.save(update_fields=["bio"])
        context = {"new_user": user, "profile": profile, "trace": summarize(trace)}
        return render(request, "accounts/signup_done.html", context)
    return render(request, "accounts/signup.html", {"form": form})


def user_list(request: HttpRequest) -> HttpResponse:
    users = User.objects.select_related("profile").order_by("username")
    return render(request, "accounts/user_list.html", {"users": users})
