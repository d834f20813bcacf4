"""Views the tests request through Django's test client."""

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
