"""Import API (/api/v1/me/imports): upload a ChatGPT or Claude export, follow its progress, choose,
cancel, delete what it brought. The same services as the portal's Import page."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import parsers, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import confirm_password_for_session
from accounts.scopes import Scope
from imports import selectors, services
from imports.models import ImportItem, ImportJob
from memoryweb.api import PAGE_PARAMETERS, paginated, paginated_response
from memoryweb.parsers import JSONParser


class ImportSerializer(serializers.ModelSerializer):
    progress = serializers.IntegerField(help_text="Percent done, 0-100 (reading the file: 0-10).")

    class Meta:
        model = ImportJob
        fields = (
            "id",
            "status",
            "progress",
            "source",
            "error",
            "conversations_found",
            "conversations_chosen",
            "conversations_done",
            "conversations_imported",
            "messages_imported",
            "created_at",
            "finished_at",
        )


class ImportItemSerializer(serializers.ModelSerializer):
    conversation = serializers.IntegerField(
        source="conversation_id", allow_null=True, help_text="What it became, while it exists."
    )

    class Meta:
        model = ImportItem
        fields = (
            "position",
            "external_id",
            "title",
            "said_at",
            "messages",
            "state",
            "note",
            "conversation",
        )


class ImportListApi(APIView):
    """The user's imports; upload an export (multipart `file`: the zip, or its conversations.json)
    to import its conversations as past ones, learned from as chats are. With `choose`, it stops
    after listing them (status `choosing`) until `start`. The same file again adds nothing: the
    job that has it is returned (200)."""

    required_scopes = {"GET": Scope.ACCOUNT_IMPORT, "POST": Scope.ACCOUNT_IMPORT}
    parser_classes = [parsers.MultiPartParser, JSONParser]

    class Input(serializers.Serializer):
        file = serializers.FileField(
            allow_empty_file=False,
            help_text=f"At most IMPORT_MAX_UPLOAD_BYTES (default {settings.IMPORT_MAX_UPLOAD_BYTES:,}).",
        )
        choose = serializers.BooleanField(
            required=False, default=False, help_text="List first, then wait for `start`."
        )

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(ImportSerializer, "Import")},
        tags=["privacy"],
    )
    def get(self, request):
        return paginated_response(
            request, self, selectors.imports_list(user=request.user), ImportSerializer
        )

    @extend_schema(
        request={"multipart/form-data": Input},
        responses={
            202: OpenApiResponse(ImportSerializer, description="Queued."),
            200: OpenApiResponse(ImportSerializer, description="This file was imported already."),
        },
        tags=["privacy"],
    )
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        job, created = services.import_upload(
            user=request.user,
            upload=data.validated_data["file"],
            choose=data.validated_data["choose"],
        )
        return Response(
            ImportSerializer(job).data,
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )


class ImportDetailApi(APIView):
    """One import: its status and progress; delete it with what it brought (its conversations,
    their messages, and the memories learned only from them)."""

    required_scopes = {"GET": Scope.ACCOUNT_IMPORT, "DELETE": Scope.ACCOUNT_IMPORT}

    class Deleted(serializers.Serializer):
        conversations = serializers.IntegerField()
        messages = serializers.IntegerField()
        memories = serializers.IntegerField(help_text="Memories learned only from them.")

    @extend_schema(responses={200: ImportSerializer}, tags=["privacy"])
    def get(self, request, import_id: int):
        return Response(ImportSerializer(_job(request, import_id)).data)

    @extend_schema(responses={200: Deleted}, tags=["privacy"])
    def delete(self, request, import_id: int):
        job = _job(request, import_id)
        confirm_password_for_session(request)
        return Response(services.import_delete(job=job))


class ImportConversationsApi(APIView):
    """The conversations found in the import's file, in file order, with what became of each."""

    required_scopes = {"GET": Scope.ACCOUNT_IMPORT}

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(ImportItemSerializer, "ImportItem")},
        tags=["privacy"],
    )
    def get(self, request, import_id: int):
        items = selectors.import_items(job=_job(request, import_id))
        return paginated_response(request, self, items, ImportItemSerializer)


class ImportStartApi(APIView):
    """Import the chosen conversations of an import waiting for the choice (status `choosing`)."""

    required_scopes = {"POST": Scope.ACCOUNT_IMPORT}

    class Input(serializers.Serializer):
        conversations = serializers.ListField(
            child=serializers.IntegerField(min_value=0, max_value=2**31),
            required=False,
            allow_null=True,
            max_length=1_000_000,
            help_text="Their `position`s; left out or null: all that can be imported.",
        )

    @extend_schema(request=Input, responses={202: ImportSerializer}, tags=["privacy"])
    def post(self, request, import_id: int):
        job = _job(request, import_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.import_start(job=job, positions=data.validated_data.get("conversations"))
        return Response(ImportSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ImportCancelApi(APIView):
    """Stop an import that has not finished; it stops between two conversations, and what it
    imported stays (delete the import to remove it)."""

    required_scopes = {"POST": Scope.ACCOUNT_IMPORT}

    @extend_schema(request=None, responses={200: ImportSerializer}, tags=["privacy"])
    def post(self, request, import_id: int):
        job = _job(request, import_id)
        services.import_cancel(job=job)
        job.refresh_from_db()
        return Response(ImportSerializer(job).data)


def _job(request, import_id: int) -> ImportJob:
    return selectors.import_get(user=request.user, job_id=import_id)
