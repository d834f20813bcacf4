"""The sign-up form: Django's user creation form plus a bio for the Profile."""

from django import forms
from django.contrib.auth.forms import UserCreationForm


class SignUpForm(UserCreationForm):
    bio = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=500)
