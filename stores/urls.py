from django.urls import path

from . import apis

urlpatterns = [
    path("", apis.StoreListApi.as_view(), name="store-list"),
    path("<str:code>/", apis.StoreDetailApi.as_view(), name="store-detail"),
    path("<str:code>/members/", apis.MemberListApi.as_view(), name="store-member-list"),
    path(
        "<str:code>/members/<str:username>/",
        apis.MemberDetailApi.as_view(),
        name="store-member-detail",
    ),
]
