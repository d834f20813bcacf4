"""Models of the loop lab. Saving a Ping or a Note loops on purpose (see receivers.py)."""

from django.contrib.auth.models import User
from django.db import models

from looplab.storage import LabStorage


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


# ------------------------------------------------------------ patterns from the tutorials


class Attachment(models.Model):
    """A file removed by a ``pre_delete`` receiver, at once: gone even if the delete rolls back."""

    name = models.CharField(max_length=100)
    file = models.FileField(upload_to="attachments/", storage=LabStorage())


class CommittedAttachment(models.Model):
    """The twin: ``post_delete`` removes the file with ``transaction.on_commit``."""

    name = models.CharField(max_length=100)
    file = models.FileField(upload_to="attachments/", storage=LabStorage())


class Post(models.Model):
    """A user's article; deleted with its author (CASCADE), logged by a ``post_delete`` receiver."""

    author = models.ForeignKey(User, on_delete=models.CASCADE, related_name="posts")
    title = models.CharField(max_length=100)


class DeletionLog(models.Model):
    """What ``post_delete`` receivers wrote, as a database trigger would: one row per deleted object."""

    model = models.CharField(max_length=100)
    object_id = models.CharField(max_length=40)
    how = models.CharField(max_length=40, default="post_delete")


class Document(models.Model):
    """Soft-deleted with ``is_deleted``: its ``post_delete`` receiver never hears of it."""

    title = models.CharField(max_length=100)
    is_deleted = models.BooleanField(default=False)

    def soft_delete(self) -> None:
        """The twin: flag the row and say so with a signal of its own."""
        from looplab.signals import document_soft_deleted

        self.is_deleted = True
        self.save(update_fields=["is_deleted"])
        document_soft_deleted.send(sender=Document, instance=self)


class Label(models.Model):
    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class Bookmark(models.Model):
    """``labels`` changes send ``m2m_changed``; a receiver keeps ``label_count`` in step."""

    title = models.CharField(max_length=100)
    labels = models.ManyToManyField(Label, blank=True)
    label_count = models.IntegerField(default=0)


class Welcome(models.Model):
    """A welcome message queued by a ``post_save`` receiver."""

    address = models.CharField(max_length=100)


class Subscriber(models.Model):
    """Its receiver queues a Welcome with ``create()``: every save queues one more."""

    email = models.CharField(max_length=100)


class Member(models.Model):
    """Its receiver uses ``get_or_create()``: saving again changes nothing."""

    email = models.CharField(max_length=100)


class Ticket(models.Model):
    """Its receiver's module is imported twice, under two names: ``handled`` counts its runs."""

    title = models.CharField(max_length=100)
    handled = models.IntegerField(default=0)


class Invoice(models.Model):
    """The twin: the same receiver, connected with a ``dispatch_uid``."""

    title = models.CharField(max_length=100)
    handled = models.IntegerField(default=0)


class PlainRow(models.Model):
    """No delete receiver: ``QuerySet.delete()`` is one ``DELETE``."""

    number = models.IntegerField()


class WatchedRow(models.Model):
    """A ``post_delete`` receiver: every row is selected and sent two signals."""

    number = models.IntegerField()


# ------------------------------------------------------------ transaction hazards


class Order(models.Model):
    """Its ``post_save`` receiver publishes a Celery task at once, before the transaction commits."""

    item = models.CharField(max_length=100)
    confirmed = models.BooleanField(default=False)


class CommittedOrder(models.Model):
    """The twin: its receiver publishes with ``delay_on_commit``, once the row is committed."""

    item = models.CharField(max_length=100)
    confirmed = models.BooleanField(default=False)


class Invitation(models.Model):
    """Its ``post_save`` receiver e-mails the guest at once: even a save that rolls back sends it."""

    email = models.CharField(max_length=100)


class CommittedInvitation(models.Model):
    """The twin: its receiver sends the e-mail from ``transaction.on_commit``."""

    email = models.CharField(max_length=100)


class Product(models.Model):
    """Its two ``post_save`` receivers index it and record its price; ``bulk_create`` runs neither."""

    name = models.CharField(max_length=100)
    price_cents = models.IntegerField()


class SearchEntry(models.Model):
    """Written by ``index_product`` for each new Product."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    text = models.CharField(max_length=100)


class PriceHistory(models.Model):
    """Written by ``record_price`` for each new Product."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    price_cents = models.IntegerField()
