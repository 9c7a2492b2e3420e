from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

store_code_validator = RegexValidator(
    r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
    "Use lowercase letters, digits and single hyphens, e.g. berlin-01.",
)


class Store(models.Model):
    """A shop, warehouse or any other place that holds stock.

    Clients address a store by its ``code``, which therefore never changes meaning.
    """

    code = models.CharField(max_length=50, unique=True, validators=[store_code_validator])
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return self.code


class Role(models.TextChoices):
    """Per-store roles, each including the rights of the ones before it."""

    VIEWER = "viewer", "Viewer"
    CLERK = "clerk", "Clerk"
    MANAGER = "manager", "Manager"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def includes(self, required: "Role") -> bool:
        return self.rank >= Role(required).rank


class Membership(models.Model):
    """Grants one user one role in one store."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "store"], name="membership_user_store_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="membership_role_valid"
            ),
        ]

    def __str__(self):
        return f"{self.user} is {self.role} of {self.store}"
