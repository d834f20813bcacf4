"""Models of the loop lab. Saving a Ping or a Note loops on purpose (see receivers.py)."""

from django.db import models


class Ping(models.Model):
    """Its post_save saves the Pong with the same id..."""

    counter = models.IntegerField(default=0)


class Pong(models.Model):
    """...whose post_save saves the Ping again: a ping-pong loop."""

    counter = models.IntegerField(default=0)


class Note(models.Model):
    """Its post_save receiver updates the word count and saves the note again, unguarded."""

    title = models.CharField(max_length=100)
    body = models.TextField(blank=True)
    word_count = models.IntegerField(default=0)


class Article(models.Model):
    """The same receiver as Note's, with a guard: it re-saves only ``word_count``, once."""

    title = models.CharField(max_length=100)
    body = models.TextField(blank=True)
    word_count = models.IntegerField(default=0)

    def __str__(self) -> str:
        return self.title


class Tag(models.Model):
    """Has a post_save receiver that ``bulk_create`` never wakes."""

    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name
