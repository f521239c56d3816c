from django.urls import path

from chat.api import ChatApi, ConversationEndApi
from memories.api import ContextApi, MemoryListApi

urlpatterns = [
    path("chat", ChatApi.as_view(), name="api-chat"),
    path("conversations/<int:conversation_id>/end", ConversationEndApi.as_view(), name="api-conversation-end"),
    path("memories", MemoryListApi.as_view(), name="api-memories"),
    path("context", ContextApi.as_view(), name="api-context"),
]
