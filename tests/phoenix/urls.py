"""The page the Phoenix test requests: saves an item, then tells robustly that it was viewed."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from tests.testapp.models import Item
from tests.testapp.signals import item_viewed


def create_and_view(request: HttpRequest) -> HttpResponse:
    item = Item.objects.create(name=request.GET.get("name", "item"))
    item_viewed.send_robust(sender=Item, item_id=item.pk)
    return HttpResponse(f"created {item.pk}")


urlpatterns = [path("items/view/", create_and_view)]
