from django.urls import path

from chat import views

app_name = "chat"
urlpatterns = [
    path("", views.index, name="index"),
    path("send/", views.send, name="send_new"),
    path("<int:conversation_id>/", views.conversation, name="conversation"),
    path("<int:conversation_id>/send/", views.send, name="send"),
    path("<int:conversation_id>/end/", views.end, name="end"),
    path("<int:conversation_id>/delete/", views.delete, name="delete"),
]
