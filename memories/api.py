"""Memory API: the user's memories (list, get, remember, edit, delete, history, report, search) and
the context for apps (profile, context for a query, pushed facts). The same services as the portal;
the context and search come from the chat's own context builder (`build_context`)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import app_of, confirm_password_for_session, record_read
from accounts.scopes import Scope
from memories import selectors, services
from memories.consolidation import Decision
from memories.erasure import memory_delete
from memories.forms import MEMORY_MAX_CHARS
from memories.models import Memory, MemoryRevision
from memories.retrieval import build_context
from memoryweb.api import PAGE_PARAMETERS, paginated, paginated_response
from memoryweb.validators import validate_text

SEARCH_BUDGET_TOKENS = 4000  # a search returns more than a reply's context; pages of it


class ContextItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.ChoiceField(choices=["memory", "episode"])
    kind = serializers.CharField(
        help_text="A memory's kind, or an episode's: turn, summary, digest."
    )
    text = serializers.CharField()
    score = serializers.FloatField()
    when = serializers.DateTimeField()
    sources = serializers.ListField(
        child=serializers.IntegerField(), help_text="Ids of the source messages."
    )
    origin = serializers.CharField(
        help_text='Where it came from: "said by the user", \'the app "Calendar"\', "an earlier chat", …'
    )


class MemorySerializer(serializers.ModelSerializer):
    sources = serializers.SerializerMethodField()
    app = serializers.SerializerMethodField()

    class Meta:
        model = Memory
        fields = (
            "id",
            "kind",
            "subject",
            "text",
            "confidence",
            "source",
            "app",
            "pinned",
            "use_in_context",
            "review_status",
            "valid_from",
            "created_at",
            "last_recalled_at",
            "sources",
        )

    def get_sources(self, memory) -> list[int]:
        return [m.pk for m in memory.source_messages.all()]

    def get_app(self, memory) -> str | None:
        """The registered app that pushed it (source "api")."""
        app = memory.attributes.get("app") if isinstance(memory.attributes, dict) else None
        return app if isinstance(app, str) else None


class RevisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = MemoryRevision
        fields = ("id", "action", "actor", "old_text", "new_text", "message", "created_at")


class MemoryDetailSerializer(MemorySerializer):
    history = serializers.SerializerMethodField()

    class Meta(MemorySerializer.Meta):
        fields = (*MemorySerializer.Meta.fields, "valid_until", "history")

    def get_history(self, memory) -> list[dict]:
        return [
            {
                "action": r.action,
                "actor": r.actor,
                "created_at": r.created_at,
                "message": r.message_id,
            }
            for r in memory.revisions.all()
        ]


class MemoryListApi(APIView):
    """The user's current memories; "remember this"."""

    required_scopes = {"GET": Scope.CONTEXT_READ, "POST": Scope.MEMORIES_MANAGE}

    class Filters(serializers.Serializer):
        kind = serializers.ChoiceField(choices=Memory.Kind.choices, required=False)
        source = serializers.ChoiceField(choices=Memory.Source.choices, required=False)
        since = serializers.DateField(
            required=False, help_text="Learned on or after this day (YYYY-MM-DD)."
        )
        until = serializers.DateField(
            required=False, help_text="Learned on or before this day (YYYY-MM-DD)."
        )

    class Input(serializers.Serializer):
        kind = serializers.ChoiceField(choices=Memory.Kind.choices, default=Memory.Kind.FACT)
        text = serializers.CharField(max_length=MEMORY_MAX_CHARS)

    class Output(serializers.Serializer):
        decision = serializers.ChoiceField(
            choices=[Decision.ADD, Decision.REINFORCE, Decision.UPDATE, Decision.SUPERSEDE],
            help_text="What remembering it did.",
        )
        memory = MemorySerializer()

    @extend_schema(
        parameters=[Filters, *PAGE_PARAMETERS],
        responses={200: paginated(MemorySerializer, "Memory")},
        tags=["memories"],
    )
    def get(self, request):
        filters = self.Filters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        # An app sees only what the user lets memory use; the user sees everything.
        usable_only = app_of(request) is not None
        memories = selectors.memory_list(
            user=request.user, usable_only=usable_only, **filters.validated_data
        )
        response = paginated_response(request, self, memories, MemorySerializer)
        record_read(request, purpose="memories API", items=len(response.data["results"]))
        return response

    @extend_schema(request=Input, responses={201: Output}, tags=["memories"])
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        memory, decision = services.memory_remember(
            user=request.user, kind=data.validated_data["kind"], text=data.validated_data["text"]
        )
        return Response(
            {"decision": decision, "memory": MemorySerializer(memory).data},
            status=status.HTTP_201_CREATED,
        )


class MemoryDetailApi(APIView):
    """One memory with its sources and history; correct it, "don't use this", delete it (with its
    history)."""

    required_scopes = {
        "GET": Scope.CONTEXT_READ,
        "PATCH": Scope.MEMORIES_MANAGE,
        "DELETE": Scope.MEMORIES_MANAGE,
    }

    class Input(serializers.Serializer):
        text = serializers.CharField(max_length=MEMORY_MAX_CHARS, required=False)
        use_in_context = serializers.BooleanField(
            required=False, help_text='False: "don\'t use this".'
        )

    @extend_schema(responses={200: MemoryDetailSerializer}, tags=["memories"])
    def get(self, request, memory_id: int):
        usable_only = app_of(request) is not None  # an app: only what memory may use (else 404)
        memory = selectors.memory_get(
            user=request.user, memory_id=memory_id, usable_only=usable_only
        )
        record_read(request, purpose="memories API", items=1)
        return Response(MemoryDetailSerializer(memory).data)

    @extend_schema(request=Input, responses={200: MemoryDetailSerializer}, tags=["memories"])
    def patch(self, request, memory_id: int):
        memory = selectors.memory_get(user=request.user, memory_id=memory_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        if "text" in data.validated_data:
            services.memory_edit(memory=memory, text=data.validated_data["text"])
        if "use_in_context" in data.validated_data:
            services.memory_set_use(
                memory=memory, use_in_context=data.validated_data["use_in_context"]
            )
        return Response(
            MemoryDetailSerializer(
                selectors.memory_get(user=request.user, memory_id=memory.pk)
            ).data
        )

    @extend_schema(responses={204: None}, tags=["memories"])
    def delete(self, request, memory_id: int):
        memory = selectors.memory_get(user=request.user, memory_id=memory_id)
        confirm_password_for_session(request)
        memory_delete(user=request.user, memory=memory)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemoryHistoryApi(APIView):
    """What changed in a memory, when and by whom (oldest first). Not for apps: it holds earlier
    texts the user corrected."""

    required_scopes = {"GET": Scope.MEMORIES_MANAGE}

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(RevisionSerializer, "Revision")},
        tags=["memories"],
    )
    def get(self, request, memory_id: int):
        memory = selectors.memory_get(user=request.user, memory_id=memory_id)
        response = paginated_response(
            request, self, memory.revisions.order_by("created_at", "id"), RevisionSerializer
        )
        record_read(request, purpose="memory history API", items=len(response.data["results"]))
        return response


class MemoryReportApi(APIView):
    """Report a memory: held for review (not used) and sent to the moderators' queue."""

    required_scopes = {"POST": Scope.MEMORIES_MANAGE}

    class Input(serializers.Serializer):
        reason = serializers.ChoiceField(choices=services.REPORT_REASONS, default="other")

    class Output(serializers.Serializer):
        memory = serializers.IntegerField()
        review_status = serializers.ChoiceField(choices=Memory.Review.choices)
        reported = serializers.BooleanField(help_text="False: it was already held or rejected.")

    @extend_schema(request=Input, responses={200: Output}, tags=["memories"])
    def post(self, request, memory_id: int):
        memory = selectors.memory_get(user=request.user, memory_id=memory_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        reported = services.memory_report(memory=memory, reason=data.validated_data["reason"])
        memory.refresh_from_db(fields=["review_status"])
        return Response(
            {"memory": memory.pk, "review_status": memory.review_status, "reported": reported}
        )


class MemorySearchApi(APIView):
    """Search memories and past conversations with the chat's own hybrid retrieval (vectors, BM25,
    full text, fused), best first, in pages."""

    required_scopes = {"GET": Scope.CONTEXT_READ}

    class Query(serializers.Serializer):
        q = serializers.CharField(
            max_length=settings.MESSAGE_MAX_CHARS, help_text="What to look for."
        )

    @extend_schema(
        parameters=[Query, *PAGE_PARAMETERS],
        responses={200: paginated(ContextItemSerializer, "ContextItem")},
        tags=["memories"],
    )
    def get(self, request):
        data = self.Query(data=request.query_params)
        data.is_valid(raise_exception=True)
        query = validate_text(data.validated_data["q"], field="query")
        context = build_context(request.user, query, budget_tokens=SEARCH_BUDGET_TOKENS)
        response = paginated_response(request, self, context.items, ContextItemSerializer)
        record_read(request, purpose="search API", items=len(response.data["results"]))
        return response


class ContextApi(APIView):
    """The context for a query within a token budget: what the chat would inject, as text and
    items."""

    required_scopes = {"POST": Scope.CONTEXT_READ}

    class Input(serializers.Serializer):
        query = serializers.CharField(trim_whitespace=True, allow_blank=False)
        budget_tokens = serializers.IntegerField(required=False, min_value=50, max_value=8000)

    class Output(serializers.Serializer):
        context = serializers.CharField(
            help_text="The items quoted as data, as the chat's prompt holds them."
        )
        tokens = serializers.IntegerField()
        items = ContextItemSerializer(many=True)

    @extend_schema(request=Input, responses={200: Output}, tags=["context"])
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        query = validate_text(data.validated_data["query"], field="query")
        context = build_context(
            request.user, query, budget_tokens=data.validated_data.get("budget_tokens")
        )
        record_read(request, purpose="context API", items=len(context.items))
        return Response(
            {
                "context": context.text,
                "tokens": context.tokens,
                "items": ContextItemSerializer(context.items, many=True).data,
            }
        )


class ProfileApi(APIView):
    """The user's always-on profile (what every reply's context starts from): pinned memories,
    instructions, name, diet, occupation, location, allergies."""

    required_scopes = {"GET": Scope.CONTEXT_READ}

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(MemorySerializer, "Profile")},
        tags=["context"],
    )
    def get(self, request):
        response = paginated_response(
            request, self, selectors.profile(user=request.user), MemorySerializer
        )
        record_read(request, purpose="profile API", items=len(response.data["results"]))
        return response


class PushApi(APIView):
    """A registered app adds a fact or observation about the user: source "api" with the app's name,
    filed beside what the user said (never over it), the poisoning check, and held for review
    (API_PUSH_REVIEW, on by default). Apps may not push instructions (400). Refused (409) when the
    user's memory is off or the text touches a sensitive category they did not opt in to. An app's
    answer tells it nothing it may not read: without context:read only "accepted"."""

    required_scopes = {"POST": Scope.MEMORIES_WRITE}

    class Input(serializers.Serializer):
        kind = serializers.ChoiceField(choices=Memory.Kind.choices, default=Memory.Kind.FACT)
        text = serializers.CharField(
            max_length=MEMORY_MAX_CHARS, help_text='A sentence about "User".'
        )
        confidence = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.8)

    class Output(serializers.Serializer):
        decision = serializers.ChoiceField(
            choices=[
                Decision.ADD,
                Decision.REINFORCE,
                Decision.UPDATE,
                Decision.SUPERSEDE,
                "known",
                "held",
                "accepted",
            ],
            help_text='"known": the user keeps a memory saying this out of use; nothing changed '
            '(only to the user\'s own key). To an app: "held" when the memory waits for review '
            '(or says what the user keeps out of use), "accepted" when the app may not read memories.',
        )
        memory = MemorySerializer(
            allow_null=True,
            help_text="Null for an app, unless the memory is one the user lets memory use and the "
            "app may read.",
        )

    @extend_schema(request=Input, responses={201: Output, 409: None}, tags=["context"])
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        decision, memory = services.memory_push_as(
            user=request.user, access=app_of(request), **data.validated_data
        )
        if decision == "instruction":
            raise serializers.ValidationError({"kind": [INSTRUCTION_REFUSAL]})
        if decision in PUSH_REFUSALS:
            code, message = PUSH_REFUSALS[decision]
            return Response({"error": {"code": decision, "message": message}}, status=code)
        if memory is None:
            return Response({"decision": decision, "memory": None}, status=status.HTTP_201_CREATED)
        record_read(request, purpose="push API", items=1)
        return Response(
            {"decision": decision, "memory": MemorySerializer(memory).data},
            status=status.HTTP_201_CREATED,
        )


INSTRUCTION_REFUSAL = (
    "Apps may not push instructions: only the user tells the assistant how to answer."
)
PUSH_REFUSALS = {
    "memory-off": (
        status.HTTP_409_CONFLICT,
        "This user's memory is off or not consented to: nothing was stored.",
    ),
    "sensitive": (
        status.HTTP_409_CONFLICT,
        "This touches a sensitive category the user has not opted in to: nothing was stored.",
    ),
}
