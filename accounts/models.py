from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """The project's own user model.

    It adds nothing yet; it exists from the first migration so that fields can be added
    later without swapping the user model under a live database.
    """
