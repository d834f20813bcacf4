"""The two receivers nearly every signals tutorial shows, connected by importing this
module in ``AccountsConfig.ready()``.

``save_user_profile`` runs on *every* save of a User (logins save ``last_login``),
so a User without a Profile would make it fail: the demo creates users only after
these receivers are connected.
"""

from typing import Any

from django.contrib.auth.models import User
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import Profile


@receiver(post_save, sender=User)
def create_user_profile(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    """A new User gets an empty Profile."""
    if created:
        Profile.objects.create(user=instance)


@receiver(post_save, sender=User)
def save_user_profile(sender: type[User], instance: User, **kwargs: Any) -> None:
    """Saving a User saves its Profile too."""
    instance.profile.save()
