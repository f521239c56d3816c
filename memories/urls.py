from django.urls import path

from memories import views

app_name = "memories"
urlpatterns = [
    path("", views.remembered, name="remembered"),
    path("remember/", views.remember, name="remember"),
    path("forget/", views.forget, name="forget"),
    path("<int:memory_id>/", views.memory_detail, name="detail"),
    path("<int:memory_id>/edit/", views.edit, name="edit"),
    path("<int:memory_id>/use/", views.set_use, name="set_use"),
    path("<int:memory_id>/report/", views.report, name="report"),
    path("<int:memory_id>/end/", views.set_end, name="set_end"),
    path("<int:memory_id>/delete/", views.delete, name="delete"),
]
