from django.urls import path

from mysite import views

urlpatterns = [
    path("healthz/", views.healthz),
    path("notes/", views.notes),
]
