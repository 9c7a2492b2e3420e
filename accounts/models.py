from django.contrib.auth.models import AbstractUser
from django.db import transaction

from .services import api_token_revoke


class User(AbstractUser):
    """The project's own user model.

    A new password (``set_password`` or ``set_unusable_password``, then ``save``) revokes
    the user's API token: whoever held the old password may have taken the token too,
    and a token outlives any password change otherwise. This covers every path that
    changes a password, since they all come here: ``manage.py changepassword``, the
    admin's password form, the password-change views and ``seed_demo``'s resets. A hash
    upgrade at login (Django re-hashing the same password) is no change and revokes
    nothing.
    """

    _password_made_unusable = False

    def set_unusable_password(self):
        super().set_unusable_password()
        self._password_made_unusable = True

    def save(self, *args, **kwargs):
        # set_password() keeps the raw password in _password until the save; a hash
        # upgrade clears it before saving. A new user has no token to revoke.
        update_fields = kwargs.get("update_fields")
        new_password = (
            (self._password is not None or self._password_made_unusable)
            and not self._state.adding
            and (update_fields is None or "password" in update_fields)
        )
        self._password_made_unusable = False
        if not new_password:
            super().save(*args, **kwargs)
            return
        with transaction.atomic():
            super().save(*args, **kwargs)
            api_token_revoke(user=self, why="password changed")
