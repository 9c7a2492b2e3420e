"""/api/v1/auth/: the browsable API's login and logout, in DRF's namespace (its templates
link to ``rest_framework:login``) but with the throttled login view."""

from django.contrib.auth import views as auth_views
from django.urls import path

from .views import ThrottledLoginView

app_name = "rest_framework"
urlpatterns = [
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
