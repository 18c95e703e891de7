"""The django-sequences side of the benchmark: an invoice numbered by get_next_value."""

from __future__ import annotations

from django.db import models


class Invoice(models.Model):
    number = models.BigIntegerField()

    class Meta:
        app_label = "djapp"
