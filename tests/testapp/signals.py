"""A custom signal, named by its dotted path in traces."""

from django.dispatch import Signal

item_viewed = Signal()
