"""factory-boy factories for the models tests build directly.

Stock levels and movements have no factory on purpose: tests create stock the way the
code does, through ``stock.services``.
"""

from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from accounts.models import User
from catalog.models import Product
from stores.models import Membership, Role, Store

TEST_PASSWORD = "correct horse battery staple"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", TEST_PASSWORD)

    @factory.post_generation
    def save_password(user, create, extracted, **kwargs):
        if create:
            user.save(update_fields=["password"])


class StoreFactory(DjangoModelFactory):
    class Meta:
        model = Store

    code = factory.Sequence(lambda n: f"store-{n:03d}")
    name = factory.Sequence(lambda n: f"Store {n}")


class ProductFactory(DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    price = Decimal("9.99")


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    store = factory.SubFactory(StoreFactory)
    role = Role.CLERK


def member(username: str, store, role, **user_fields):
    """A user holding ``role`` in ``store``."""
    user = UserFactory(username=username, **user_fields)
    MembershipFactory(user=user, store=store, role=role)
    return user
