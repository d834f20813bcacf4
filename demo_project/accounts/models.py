"""A Profile per User, the textbook companion model of post_save signals."""

from django.contrib.auth.models import User
from django.db import models


class Profile(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE)
    bio = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Profile of {self.user.username}"
