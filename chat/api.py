"""Chat API: one view per operation, calling the same services as the pages."""

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import api_key_of
from chat import selectors, services
from memories.api import ContextItemSerializer


class ChatApi(APIView):
    class Input(serializers.Serializer):
        message = serializers.CharField(trim_whitespace=True, allow_blank=False)
        conversation = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=2**62)
        temporary = serializers.BooleanField(required=False, default=False)

    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        conversation_id = data.validated_data.get("conversation")
        conversation = (
            selectors.conversation_get(user=request.user, conversation_id=conversation_id) if conversation_id else None
        )
        result = services.chat_turn(
            user=request.user,
            conversation=conversation,
            text=data.validated_data["message"],
            temporary=data.validated_data["temporary"],
            api_key=api_key_of(request),
        )
        return Response(
            {
                "conversation": result.conversation.pk,
                "message": result.user_message.pk,
                "reply": result.reply.content,
                "reply_message": result.reply.pk,
                "recalled": ContextItemSerializer(result.context.items, many=True).data,
            }
        )


class ConversationDetailApi(APIView):
    class Output(serializers.Serializer):
        id = serializers.IntegerField()
        title = serializers.CharField()
        created_at = serializers.DateTimeField()
        ended_at = serializers.DateTimeField()
        messages = serializers.SerializerMethodField()

        def get_messages(self, conversation) -> list[dict]:
            return [
                {
                    "id": m.pk,
                    "role": m.role,
                    "content": m.content,
                    "created_at": m.created_at,
                    "recalled": [
                        {"memory": r.memory_id, "episode": r.episode_id, "rank": r.rank, "score": r.score}
                        for r in m.recalls.all()
                    ],
                }
                for m in selectors.message_list(conversation=conversation)
            ]

    def get(self, request, conversation_id: int):
        conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
        return Response(self.Output(conversation).data)


class MessageDetailApi(APIView):
    def get(self, request, message_id: int):
        message = selectors.message_get(user=request.user, message_id=message_id)
        return Response(
            {
                "id": message.pk,
                "conversation": message.conversation_id,
                "role": message.role,
                "content": message.content,
                "created_at": message.created_at,
            }
        )


class ConversationEndApi(APIView):
    def post(self, request, conversation_id: int):
        conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
        services.conversation_end(conversation=conversation)
        return Response({"conversation": conversation.pk, "ended_at": conversation.ended_at})
