from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.http import require_POST

from shop.models import Order
from shop.tasks import send_receipt


@require_POST
def place_order(request):
    with transaction.atomic():
        order = Order.objects.create(item=request.POST["item"])
        result = send_receipt.enqueue(order.id)
        if order.item == "out of stock":
            raise RuntimeError("out of stock")
    return JsonResponse({"order": order.id, "task": result.id})
