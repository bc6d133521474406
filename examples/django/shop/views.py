from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.http import require_POST

from shop.models import Order
from shop.tasks import send_receipt


@require_POST
def place_order(request):
    with transaction.atomic():
        order = Order.objects.create(email=request.POST["email"])
        result = send_receipt.enqueue(order.id)
        # On PostgreSQL, if anything below raised, the order and the task would disappear together.
    return JsonResponse({"order": order.id, "task": result.id})


def task_status(request, task_id):
    result = send_receipt.get_result(task_id)
    return JsonResponse(
        {
            "status": result.status,
            "attempts": result.attempts,
            "return_value": result.return_value if result.status == "SUCCESSFUL" else None,
            "errors": [error.exception_class_path for error in result.errors],
        }
    )
