from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower

# "bulk" is no SKU: /stores/{code}/stock/bulk/ is the bulk endpoint, not a level.
sku_validator = RegexValidator(
    r"^(?!bulk$)[A-Za-z0-9][A-Za-z0-9._-]*$",
    "Use letters, digits, '.', '_' and '-', starting with a letter or digit ('bulk' is reserved).",
)


class Product(models.Model):
    """One entry of the catalog shared by every store.

    A product with stock history is never deleted (its stock rows protect it); it is
    deactivated instead.
    """

    sku = models.CharField(max_length=64, unique=True, validators=[sku_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            # "ABC-1" and "abc-1" on two labels would be two products to a database
            # and one to every person reading them.
            models.UniqueConstraint(Lower("sku"), name="product_sku_case_insensitive_unique"),
            models.CheckConstraint(
                condition=models.Q(price__gte=0), name="product_price_non_negative"
            ),
        ]

    def __str__(self):
        return f"{self.sku} {self.name}"
