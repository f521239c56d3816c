"""Memory API: list memories, and the context for a query (the chat's own context builder)."""

from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import api_key_of
from accounts.models import AccessEvent
from chat.services import validate_text
from memories import selectors
from memories.models import Memory
from memories.retrieval import build_context


class ContextItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    kind = serializers.CharField()
    text = serializers.CharField()
    score = serializers.FloatField()
    when = serializers.DateTimeField()
    sources = serializers.ListField(child=serializers.IntegerField())


class MemoryListApi(APIView):
    class Output(serializers.ModelSerializer):
        sources = serializers.SerializerMethodField()

        class Meta:
            model = Memory
            fields = (
                "id",
                "kind",
                "subject",
                "text",
                "confidence",
                "source",
                "pinned",
                "valid_from",
                "created_at",
                "last_recalled_at",
                "sources",
            )

        def get_sources(self, memory) -> list[int]:
            return [m.pk for m in memory.source_messages.all()]

    def get(self, request):
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(selectors.memory_list(user=request.user), request, view=self)
        return paginator.get_paginated_response(self.Output(page, many=True).data)


class MemoryDetailApi(APIView):
    class Output(MemoryListApi.Output):
        history = serializers.SerializerMethodField()

        class Meta(MemoryListApi.Output.Meta):
            fields = (*MemoryListApi.Output.Meta.fields, "valid_until", "history")

        def get_history(self, memory) -> list[dict]:
            return [
                {"action": r.action, "actor": r.actor, "created_at": r.created_at, "message": r.message_id}
                for r in memory.revisions.all()
            ]

    def get(self, request, memory_id: int):
        return Response(self.Output(selectors.memory_get(user=request.user, memory_id=memory_id)).data)


class ContextApi(APIView):
    class Input(serializers.Serializer):
        query = serializers.CharField(trim_whitespace=True, allow_blank=False)
        budget_tokens = serializers.IntegerField(required=False, min_value=50, max_value=8000)

    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        query = validate_text(data.validated_data["query"], field="query")
        context = build_context(request.user, query, budget_tokens=data.validated_data.get("budget_tokens"))
        AccessEvent.objects.create(
            user=request.user,
            actor=AccessEvent.Actor.API,
            purpose="context API",
            api_key=api_key_of(request),
            items=len(context.items),
        )
        return Response(
            {
                "context": context.text,
                "tokens": context.tokens,
                "items": ContextItemSerializer(context.items, many=True).data,
            }
        )
