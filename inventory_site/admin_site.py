"""The admin site, open to store members as well as staff.

Django's admin lets in only ``is_staff`` users. Store managers (and their clerks and
viewers) log in here too; each model admin then shows everyone only what their roles and
model permissions allow (``stores.access``, ``stores.admin.StoreScopedAdmin``).
"""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from accounts.forms import ThrottledLoginMixin
from accounts.views import with_retry_after
from stores.access import may_use_admin


class MemberAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The admin's login form: store members as well as staff, and throttled (past the
    login rate limits an attempt is refused before its password is checked)."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": (
            "Please enter the correct %(username)s and password of a store member or "
            "staff account. Note that both fields may be case-sensitive."
        ),
    }

    def confirm_login_allowed(self, user):
        AuthenticationForm.confirm_login_allowed(self, user)  # active users only
        if not may_use_admin(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class InventoryAdminSite(admin.AdminSite):
    site_header = "Inventory"
    site_title = "Inventory"
    login_form = MemberAuthenticationForm

    def login(self, request, extra_context=None):
        """Django's login view; a throttled attempt answers 429 with Retry-After, the
        form and its error still shown."""
        response = super().login(request, extra_context)
        return with_retry_after(response, getattr(response, "context_data", {}).get("form"))

    def has_permission(self, request):
        if not hasattr(request, "_may_use_admin"):
            request._may_use_admin = request.user.is_authenticated and may_use_admin(request.user)
        return request._may_use_admin
