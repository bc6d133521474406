"""The shop's tasks: plain functions that Onward stores and runs."""

try:
    from django.tasks import task
except ImportError:  # Django before 6.0: the django-tasks backport
    from django_tasks import task

from django.core.mail import mail_admins, send_mail

from shop.models import Order


@task(queue_name="emails", priority=10)
def send_receipt(order_id):
    order = Order.objects.get(pk=order_id)
    send_mail("Your order", f"Order {order.id} is on its way.", "shop@example.com", [order.email])
    Order.objects.filter(pk=order_id).update(receipt_sent=True)
    return order_id


@task
def notify_staff(count):
    mail_admins("Orders imported", f"{count} orders were imported.")
    return count
