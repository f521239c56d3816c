from django.urls import path

from chat.api import ChatApi, ConversationDetailApi, ConversationEndApi, MessageDetailApi
from memories.api import ContextApi, MemoryDetailApi, MemoryListApi

urlpatterns = [
    path("chat", ChatApi.as_view(), name="api-chat"),
    path("conversations/<int:conversation_id>", ConversationDetailApi.as_view(), name="api-conversation"),
    path("conversations/<int:conversation_id>/end", ConversationEndApi.as_view(), name="api-conversation-end"),
    path("messages/<int:message_id>", MessageDetailApi.as_view(), name="api-message"),
    path("memories", MemoryListApi.as_view(), name="api-memories"),
    path("memories/<int:memory_id>", MemoryDetailApi.as_view(), name="api-memory"),
    path("context", ContextApi.as_view(), name="api-context"),
]
