"""The django-sequences side of the benchmark: an invoice numbered by get_next_value."""

from __future__ import annotations

from django.db import models


class Invoice(models.Model):
    number = models.BigIntegerField()

    class Meta:
        app_label = "djapp"


# The contention benchmark's tables, created by SQLAlchemy (benchmarks/contention.py) and
# written by django-sequences' contender through Django's ORM.
class ContentionInvoice(models.Model):
    series = models.CharField(max_length=100)
    number = models.BigIntegerField(null=True)

    class Meta:
        app_label = "djapp"
        db_table = "contention_invoice"
        managed = False


class ContentionLine(models.Model):
    invoice = models.ForeignKey(ContentionInvoice, models.DO_NOTHING)
    amount = models.IntegerField()

    class Meta:
        app_label = "djapp"
        db_table = "contention_line"
        managed = False


class ContentionNote(models.Model):
    series = models.CharField(max_length=100)
    number = models.BigIntegerField(null=True)

    class Meta:
        app_label = "djapp"
        db_table = "contention_note"
        managed = False
