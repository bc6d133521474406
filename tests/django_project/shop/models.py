from django.db import models


class Event(models.Model):
    """Something a task or job did, in the order it did it."""

    label = models.CharField(max_length=200)


class Order(models.Model):
    item = models.CharField(max_length=200)
    receipt_sent = models.BooleanField(default=False)
