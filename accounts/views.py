"""The browsable API's login page (``rest_framework:login``), throttled."""

from django.contrib.auth import views as auth_views

from .forms import ThrottledAuthenticationForm


class ThrottledLoginView(auth_views.LoginView):
    """DRF's login page (rest_framework.urls), with the login rate limits: past them the
    form answers 429 with Retry-After and an error, without checking the password."""

    form_class = ThrottledAuthenticationForm
    template_name = "rest_framework/login.html"

    def form_invalid(self, form):
        return with_retry_after(super().form_invalid(form), form)


def with_retry_after(response, form):
    """``response`` (the login page again) as 429 with Retry-After when ``form`` was
    refused by the login rate limits; the page still shows the form and its error."""
    if getattr(form, "retry_after", None):
        response.status_code = 429
        response["Retry-After"] = str(form.retry_after)
    return response
