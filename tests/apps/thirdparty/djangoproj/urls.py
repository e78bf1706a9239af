from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("hello/<str:name>/", views.hello),
    path("echo/", views.echo_form),
    path("api/info/", views.info),
    path("async-json/", views.async_json),
    path("protected/", views.protected_form),
]
