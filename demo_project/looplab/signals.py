"""The lab's own signals, sent by its views (receivers live in receivers.py)."""

from django.dispatch import Signal

#: Sent with send_robust after a (pretend) payment: one receiver fails.
order_paid = Signal()

#: Sent when a report is requested: one receiver is slow.
report_requested = Signal()

#: Sent with asend from an async view: most receivers are coroutines.
photo_uploaded = Signal()

#: Sent by ``Document.soft_delete()``: what soft-deleted rows need instead of post_delete.
document_soft_deleted = Signal()
