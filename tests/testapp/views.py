"""Views the tests request through Django's test client."""

from asgiref.sync import sync_to_async
from django.db import connections, transaction
from django.http import HttpRequest, HttpResponse

from tests.testapp.models import Item
from tests.testapp.signals import item_viewed


def create_item(request: HttpRequest) -> HttpResponse:
    item = Item.objects.create(name=request.GET.get("name", "item"))
    item_viewed.send(sender=Item, item_id=item.pk)
    return HttpResponse(f"created {item.pk}")


async def create_item_async(request: HttpRequest) -> HttpResponse:
    item = await Item.objects.acreate(name="async")
    await item_viewed.asend(sender=Item, item_id=item.pk)
    return HttpResponse(f"created {item.pk}")


# Views of tests/test_transaction_edges.py: each saves an Item on the database alias in its URL.


class ViewFailed(Exception):
    """Raised by :func:`save_item_then_fail` after its save."""


def save_item(request: HttpRequest, using: str) -> HttpResponse:
    """Saves an Item and says whether Django ran the view in a transaction (``ATOMIC_REQUESTS``)."""
    Item.objects.using(using).create(name=request.GET.get("name", "item"))
    return HttpResponse(f"saved, in a transaction: {connections[using].in_atomic_block}")


def save_item_then_fail(request: HttpRequest, using: str) -> HttpResponse:
    """Saves an Item, then raises: under ``ATOMIC_REQUESTS`` Django rolls the save back."""
    Item.objects.using(using).create(name=request.GET.get("name", "item"))
    raise ViewFailed("the view failed after its save")


async def save_item_in_block(request: HttpRequest, using: str) -> HttpResponse:
    """An async view that saves inside ``atomic()`` through ``sync_to_async(thread_sensitive=True)``."""
    await sync_to_async(_save_in_block, thread_sensitive=True)(using, request.GET.get("name", "item"))
    return HttpResponse("saved")


def _save_in_block(using: str, name: str) -> None:
    with transaction.atomic(using=using):
        Item.objects.using(using).create(name=name)
