"""``manage.py seed_demo``: a few users (profiles made by the signal), articles and tags.

Idempotent: existing rows are left alone. Never saves a Ping or a Note, whose
receivers loop on purpose.
"""

from typing import Any

from accounts.models import Profile
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand

from looplab.models import Article, Tag

USERS = [
    ("ada", "Writes the analytical engine's first programs."),
    ("grace", "Finds bugs, sometimes literally."),
    ("linus", "Mostly reviews patches."),
]
ARTICLES = [
    ("Why signals", "Signals decouple the code that saves from the code that reacts."),
    ("Guard your re-saves", "Save only the fields you changed, and return when your own save comes back."),
]
TAGS = ["django", "signals", "orm"]


class Command(BaseCommand):
    help = "Create demo users (their profiles come from post_save), articles and tags."

    def handle(self, *args: Any, **options: Any) -> None:
        created = 0
        for username, bio in USERS:
            if User.objects.filter(username=username).exists():
                continue
            user = User.objects.create_user(username=username, password=f"{username}-demo-password")
            Profile.objects.filter(user=user).update(bio=bio)
            created += 1
        for title, body in ARTICLES:
            if not Article.objects.filter(title=title).exists():
                Article.objects.create(title=title, body=body)
        Tag.objects.bulk_create([Tag(name=name) for name in TAGS], ignore_conflicts=True)
        self.stdout.write(f"Demo data ready: {created} new users, {User.objects.count()} in all.")
