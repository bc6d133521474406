from django.test import TransactionTestCase

from onward.testing import drain
from shop.models import Order
from shop.tasks import send_receipt


class ReceiptTests(TransactionTestCase):
    def test_the_receipt_is_sent(self):
        order = Order.objects.create(email="ada@example.com")
        result = send_receipt.enqueue(order.id)
        assert drain() == 1
        result.refresh()
        assert result.status == "SUCCESSFUL"
        order.refresh_from_db()
        assert order.receipt_sent
