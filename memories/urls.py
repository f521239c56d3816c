from django.urls import path

from memories import views

app_name = "memories"
urlpatterns = [
    path("", views.remembered, name="remembered"),
    path("<int:memory_id>/", views.memory_detail, name="detail"),
]
