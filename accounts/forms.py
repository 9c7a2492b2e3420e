"""Login forms that count each attempt against the login rate limits before they check
the password."""

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from rest_framework.exceptions import Throttled

from inventory_site.api.ratelimits import enforce_login_form_rate_limits


class ThrottledLoginMixin:
    """For an ``AuthenticationForm``: counts the attempt per client address and per
    username (``enforce_login_form_rate_limits``) and, past either limit, refuses it with a
    form error before authenticating. A refused attempt checks no password and sends no
    ``user_login_failed``, so a flood records no failed-login audit event beyond the
    limits. ``retry_after`` is then the seconds to wait, for the view's Retry-After."""

    throttled_message = "Too many login attempts. Try again in %(wait)s."
    retry_after: int | None = None

    def clean(self):
        try:
            enforce_login_form_rate_limits(self.request, username=self.cleaned_data.get("username"))
        except Throttled as throttled:
            self.retry_after = int(throttled.wait)
            unit = "second" if self.retry_after == 1 else "seconds"
            raise ValidationError(
                self.throttled_message,
                code="throttled",
                params={"wait": f"{self.retry_after} {unit}"},
            ) from None
        return super().clean()


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass
