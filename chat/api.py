"""Chat API: one view per operation, calling the same services as the pages."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import api_key_of, confirm_password_for_session
from accounts.scopes import Scope
from chat import selectors, services
from chat.models import Conversation, Message
from chat.services import conversation_delete
from memories.api import ContextItemSerializer
from memoryweb.api import PAGE_PARAMETERS, paginated, paginated_response

logger = logging.getLogger(__name__)

STREAM_DESCRIPTION = (
    "With `stream: true`, a `text/event-stream`: one `start` event (`{conversation, message}`), `delta` "
    "events (`{text}`) as the reply is written, and one `done` event with the same object as without streaming."
)


class ChatOutputSerializer(serializers.Serializer):
    conversation = serializers.IntegerField()
    message = serializers.IntegerField(help_text="The id of your message.")
    reply = serializers.CharField()
    reply_message = serializers.IntegerField(help_text="The id of the reply's message.")
    recalled = ContextItemSerializer(many=True, help_text="What the reply drew on from memory.")


ServerSentEvent = inline_serializer(
    name="ChatEvent",
    fields={
        "event": serializers.ChoiceField(choices=["start", "delta", "done"]),
        "data": serializers.CharField(
            help_text="JSON: {conversation, message}, {text}, or the chat's output."
        ),
    },
)


def _chat_output(result: services.TurnResult) -> dict:
    return {
        "conversation": result.conversation.pk,
        "message": result.user_message.pk,
        "reply": result.reply.content,
        "reply_message": result.reply.pk,
        "recalled": ContextItemSerializer(result.context.items, many=True).data,
    }


class ChatApi(APIView):
    """Send a message (to a new conversation when none is given) and get the reply."""

    required_scopes = {"POST": Scope.CHAT}

    class Input(serializers.Serializer):
        message = serializers.CharField(trim_whitespace=True, allow_blank=False)
        conversation = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, max_value=2**62
        )
        temporary = serializers.BooleanField(required=False, default=False)
        stream = serializers.BooleanField(
            required=False, default=False, help_text=STREAM_DESCRIPTION
        )

    @extend_schema(
        request=Input,
        responses={
            (200, "application/json"): ChatOutputSerializer,
            (200, "text/event-stream"): OpenApiResponse(
                ServerSentEvent, description=STREAM_DESCRIPTION
            ),
        },
        tags=["chat"],
    )
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        conversation_id = data.validated_data.get("conversation")
        arguments = {
            "user": request.user,
            "conversation": (
                selectors.conversation_get(user=request.user, conversation_id=conversation_id)
                if conversation_id
                else None
            ),
            "text": data.validated_data["message"],
            "temporary": data.validated_data["temporary"],
            "api_key": api_key_of(request),
        }
        if data.validated_data["stream"]:
            streamed = services.chat_turn_stream(**arguments)
            response = StreamingHttpResponse(
                _EventStream(streamed), content_type="text/event-stream"
            )
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"  # proxies: pass each event on at once
            return response
        return Response(_chat_output(services.chat_turn(**arguments)))


class _EventStream:
    """Server-sent events of a streamed turn. The server closes the response when it is sent or the
    client went away, in the request's own thread: `close` then stores the reply (what was written
    so far)."""

    def __init__(self, streamed: services.StreamedTurn):
        self.streamed = streamed
        self.events = self._events()

    def __iter__(self) -> Iterator[bytes]:
        return self.events

    def _events(self) -> Iterator[bytes]:
        streamed = self.streamed
        yield _event(
            "start", {"conversation": streamed.conversation.pk, "message": streamed.user_message.pk}
        )
        for chunk in streamed.chunks():
            yield _event("delta", {"text": chunk})
        try:
            yield _event("done", _chat_output(streamed.finish()))
        except ValidationError as error:
            yield _event(
                "error", {"error": {"code": "conversation_deleted", "message": error.messages[0]}}
            )

    def close(self) -> None:
        self.events.close()
        try:
            self.streamed.finish()
        except ValidationError:
            logger.info(
                "streamed reply not stored: conversation %s was deleted",
                self.streamed.conversation.pk,
            )


def _event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, cls=DjangoJSONEncoder)}\n\n".encode()


class RecallSerializer(serializers.Serializer):
    memory = serializers.IntegerField(source="memory_id", allow_null=True)
    episode = serializers.IntegerField(source="episode_id", allow_null=True)
    rank = serializers.IntegerField()
    score = serializers.FloatField()


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ("id", "conversation", "role", "content", "created_at")


class MessageWithRecallsSerializer(MessageSerializer):
    recalled = RecallSerializer(source="recalls", many=True)

    class Meta(MessageSerializer.Meta):
        fields = ("id", "role", "content", "created_at", "recalled")


class ConversationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = (
            "id",
            "title",
            "temporary",
            "origin",
            "origin_id",
            "created_at",
            "last_activity_at",
            "ended_at",
        )


class ConversationListApi(APIView):
    """The user's conversations, most recently active first."""

    required_scopes = {"GET": Scope.CHAT}

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(ConversationSerializer, "Conversation")},
    )
    def get(self, request):
        return paginated_response(
            request, self, selectors.conversation_list(user=request.user), ConversationSerializer
        )


class ConversationDetailApi(APIView):
    """A conversation with its messages (and what each reply recalled); delete it with what was
    learned only from it (the portal's "Delete a conversation")."""

    required_scopes = {"GET": Scope.CHAT, "DELETE": Scope.CHAT}

    class Output(ConversationSerializer):
        messages = serializers.SerializerMethodField()

        class Meta(ConversationSerializer.Meta):
            fields = (*ConversationSerializer.Meta.fields, "messages")

        @extend_schema_field(MessageWithRecallsSerializer(many=True))
        def get_messages(self, conversation) -> list[dict]:
            return MessageWithRecallsSerializer(
                selectors.message_list(conversation=conversation), many=True
            ).data

    class Deleted(serializers.Serializer):
        messages = serializers.IntegerField()
        memories = serializers.IntegerField(
            help_text="Memories learned only from it, deleted with their history."
        )
        digests = serializers.IntegerField(
            help_text="Digests that drew on it, rewritten without it."
        )
        receipt = serializers.UUIDField(
            allow_null=True,
            help_text="The id of the signed erasure receipt (GET /api/v1/me/receipts/{id}).",
        )

    @extend_schema(responses={200: Output})
    def get(self, request, conversation_id: int):
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        return Response(self.Output(conversation).data)

    @extend_schema(responses={200: Deleted})
    def delete(self, request, conversation_id: int):
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        confirm_password_for_session(request)
        return Response(
            conversation_delete(user=request.user, conversation=conversation, receipt=True)
        )


class ConversationMessagesApi(APIView):
    """A conversation's messages in order, in pages, each reply with what it recalled."""

    required_scopes = {"GET": Scope.CHAT}

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(MessageWithRecallsSerializer, "Message")},
    )
    def get(self, request, conversation_id: int):
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        return paginated_response(
            request,
            self,
            selectors.message_list(conversation=conversation),
            MessageWithRecallsSerializer,
        )


class MessageDetailApi(APIView):
    required_scopes = {"GET": Scope.CHAT}

    @extend_schema(responses={200: MessageSerializer})
    def get(self, request, message_id: int):
        return Response(
            MessageSerializer(selectors.message_get(user=request.user, message_id=message_id)).data
        )


class ConversationEndApi(APIView):
    """End a conversation: what was said in it is then summarized and remembered."""

    required_scopes = {"POST": Scope.CHAT}

    class Output(serializers.Serializer):
        conversation = serializers.IntegerField()
        ended_at = serializers.DateTimeField()

    @extend_schema(request=None, responses={200: Output})
    def post(self, request, conversation_id: int):
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        services.conversation_end(conversation=conversation)
        return Response({"conversation": conversation.pk, "ended_at": conversation.ended_at})
