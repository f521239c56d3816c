from django.urls import path

from imports import views

app_name = "imports"

urlpatterns = [
    path("", views.imports_page, name="index"),
    path("<int:import_id>/", views.import_page, name="detail"),
    path("<int:import_id>/start/", views.import_start_view, name="start"),
    path("<int:import_id>/cancel/", views.import_cancel_view, name="cancel"),
    path("<int:import_id>/delete/", views.import_delete_view, name="delete"),
]
