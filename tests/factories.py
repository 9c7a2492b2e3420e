"""factory-boy factories for the models tests build directly.

Stock levels and movements have no factory on purpose: tests create stock the way the
code does, through ``stock.services``. Stock events have one, so that the log's readers
(the API, the admin, pruning) are tested on logs of any shape, apart from its writer.
"""

from decimal import Decimal

import factory
from django.contrib.auth.models import Permission
from django.db.models import Max
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import User
from catalog.models import Product
from events.models import EventType, StockEvent, StoreEventSequence
from stores.models import Membership, Role, Store

TEST_PASSWORD = "correct horse battery staple"

# The apps whose model permissions make up a staff user's powers (README, "Roles").
INVENTORY_APPS = ("catalog", "stores", "stock", "audit")


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


def inventory_permissions(*actions: str) -> list[str]:
    """Every model permission of the inventory apps as "app_label.codename", or only
    those of ``actions`` ("view", "add", "change", "delete")."""
    permissions = Permission.objects.filter(content_type__app_label__in=INVENTORY_APPS)
    names = [
        f"{app_label}.{codename}"
        for app_label, codename in permissions.values_list("content_type__app_label", "codename")
    ]
    if actions:
        names = [name for name in names if name.split(".")[1].split("_")[0] in actions]
    return sorted(names)


def grant_permissions(user, names) -> None:
    """Give ``user`` the model permissions ``names`` ("app_label.codename"), in one
    query and one insert: the permission matrix makes staff users by the hundred."""
    wanted = {tuple(name.split(".")) for name in names}
    found = [
        permission
        for permission in Permission.objects.select_related("content_type")
        if (permission.content_type.app_label, permission.codename) in wanted
    ]
    missing = wanted - {(p.content_type.app_label, p.codename) for p in found}
    if missing:
        raise Permission.DoesNotExist(f"no such permissions: {sorted(missing)}")
    user.user_permissions.add(*found)


class StaffFactory(UserFactory):
    """A staff user holding ``permissions`` ("app_label.codename"): by default every
    model permission of the inventory apps, what staff need to manage the catalog, the
    stores, their members and stock. ``is_staff`` alone grants nothing;
    ``StaffFactory(permissions=[])`` is such a user."""

    is_staff = True

    @factory.post_generation
    def permissions(user, create, extracted, **kwargs):
        if create:
            grant_permissions(user, inventory_permissions() if extracted is None else extracted)


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


def take_event_numbers(store, count: int = 1) -> range:
    """The next ``count`` numbers of ``store``'s event log, taken from its
    ``StoreEventSequence`` as the stock services take them."""
    sequence, _ = StoreEventSequence.objects.get_or_create(store=store)
    logged = StockEvent.objects.filter(store=store).aggregate(last=Max("seq"))["last"] or 0
    last = max(sequence.last_seq, logged) + count
    StoreEventSequence.objects.filter(store=store).update(last_seq=last)
    return range(last - count + 1, last + 1)


class StockEventFactory(DjangoModelFactory):
    """An event as the writer leaves it, numbered next in ``store``'s log (after both
    its sequence and its last event); a ``seq`` given is taken as it is and the
    sequence left alone (gapless per store is then the caller's care).
    ``StockEventFactory.log(store, count)`` writes many at once."""

    class Meta:
        model = StockEvent

    store = factory.SubFactory(StoreFactory)
    seq = None
    product = factory.SubFactory(ProductFactory)
    type = EventType.CHANGED
    on_hand = factory.Sequence(lambda n: 100 + n % 50)
    reserved = 0
    available = factory.LazyAttribute(lambda event: event.on_hand - event.reserved)
    reorder_point = 5
    version = factory.Sequence(lambda n: n + 1)
    movement_id = factory.Sequence(lambda n: n + 1)
    at = factory.LazyFunction(timezone.now)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        if kwargs.get("seq") is None:
            (kwargs["seq"],) = take_event_numbers(kwargs["store"])
        return super()._create(model_class, *args, **kwargs)

    @classmethod
    def log(cls, store, count: int, **fields) -> list[StockEvent]:
        """``count`` events of ``store`` numbered next, in one INSERT."""
        if "product" not in fields:
            fields["product"] = ProductFactory()
        events = [
            cls.build(store=store, seq=seq, **fields) for seq in take_event_numbers(store, count)
        ]
        return StockEvent.objects.bulk_create(events)
