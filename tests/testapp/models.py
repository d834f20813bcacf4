"""Models the tests send signals for."""

from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        # A __str__ that queries: rendering must never call it.
        return f"{self.name} ({Item.objects.count()} items)"


class Ping(models.Model):
    name = models.CharField(max_length=50, default="ping")
    counter = models.IntegerField(default=0)


class Pong(models.Model):
    name = models.CharField(max_length=50, default="pong")
    counter = models.IntegerField(default=0)


class Node(models.Model):
    name = models.CharField(max_length=50)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE)
    children_count = models.IntegerField(default=0)
