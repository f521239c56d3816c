"""Privacy API (/api/v1/me/...): memory settings, consent, the data export, the access log,
"forget everything" and the user's API keys. The same services as the privacy portal's pages; apps
may use none of these (their scopes are the account's)."""

from __future__ import annotations

from django.contrib.auth import logout
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import api_key_of, confirm_password_for_session
from accounts.export.jobs import ExportExpired, ExportNotFound, export_archive, export_request
from accounts.forms import consent_purposes
from accounts.models import (
    AccessEvent,
    ApiKey,
    DataExport,
    ErasureReceipt,
    MemorySettings,
    time_zone_names,
)
from accounts.privacy import FORGET_PHRASE, forget_everything
from accounts.receipts import receipt_response
from accounts.scopes import Scope
from accounts.selectors import (
    api_key_of_user,
    api_keys_list,
    consents_in_force,
    memory_settings_get,
    receipt_of_user,
    receipts_list,
)
from accounts.services import api_key_revoke, consent_set, memory_settings_update, time_zone_set
from memoryweb.api import PAGE_PARAMETERS, ErrorSerializer, paginated, paginated_response


class SettingsApi(APIView):
    """Memory on/off, use of past chats, how long temporary chats are kept, and the user's time zone
    (what "today" or "next Friday" mean). Changes apply to the next message."""

    required_scopes = {"GET": Scope.ACCOUNT_SETTINGS, "PATCH": Scope.ACCOUNT_SETTINGS}

    class Output(serializers.ModelSerializer):
        updated_at = serializers.DateTimeField(
            read_only=True, allow_null=True, help_text="Null: never changed."
        )
        time_zone = serializers.CharField(
            source="user.time_zone", help_text="IANA name, e.g. Europe/Paris."
        )

        class Meta:
            model = MemorySettings
            fields = (
                "memory_enabled",
                "use_past_chats",
                "temporary_chat_hours",
                "time_zone",
                "updated_at",
            )

    class Input(serializers.ModelSerializer):
        time_zone = serializers.CharField(required=False, help_text="IANA name, e.g. Europe/Paris.")

        class Meta:
            model = MemorySettings
            fields = ("memory_enabled", "use_past_chats", "temporary_chat_hours", "time_zone")
            extra_kwargs = {"temporary_chat_hours": {"min_value": 1, "max_value": 720}}

        def validate_time_zone(self, value: str) -> str:
            if value not in time_zone_names():
                raise serializers.ValidationError("Not a time zone name (e.g. Europe/Paris).")
            return value

    @extend_schema(responses={200: Output}, tags=["privacy"])
    def get(self, request):
        return Response(self.Output(memory_settings_get(user=request.user)).data)

    @extend_schema(request=Input, responses={200: Output}, tags=["privacy"])
    def patch(self, request):
        data = self.Input(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "time_zone" in changes:
            time_zone_set(user=request.user, time_zone=changes.pop("time_zone"))
        return Response(self.Output(memory_settings_update(user=request.user, **changes)).data)


class ConsentSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    label = serializers.CharField()
    granted = serializers.BooleanField()
    since = serializers.DateTimeField(
        allow_null=True, help_text="When the record in force was made."
    )
    method = serializers.CharField(allow_null=True)
    policy_version = serializers.CharField(allow_null=True)


class ConsentApi(APIView):
    """Each purpose (memory, each sensitive category) with the consent in force; grant or withdraw
    one, in force at once, recorded with the policy version and the method "api"."""

    required_scopes = {"GET": Scope.ACCOUNT_CONSENT, "POST": Scope.ACCOUNT_CONSENT}

    class Input(serializers.Serializer):
        purpose = serializers.ChoiceField(choices=list(consent_purposes()))
        granted = serializers.BooleanField()

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(ConsentSerializer, "Consent")},
        tags=["privacy"],
    )
    def get(self, request):
        in_force = consents_in_force(user=request.user)
        rows = [
            _consent(purpose, label, in_force.get(purpose))
            for purpose, label in consent_purposes().items()
        ]
        return paginated_response(request, self, rows, ConsentSerializer)

    @extend_schema(request=Input, responses={200: ConsentSerializer}, tags=["privacy"])
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        purpose = data.validated_data["purpose"]
        record = consent_set(
            user=request.user, purpose=purpose, granted=data.validated_data["granted"], method="api"
        )
        return Response(
            ConsentSerializer(_consent(purpose, consent_purposes()[purpose], record)).data
        )


def _consent(purpose: str, label: str, record) -> dict:
    return {
        "purpose": purpose,
        "label": label,
        "granted": bool(record and record.granted),
        "since": record.created_at if record else None,
        "method": record.method if record else None,
        "policy_version": record.policy_version if record else None,
    }


class ExportSerializer(serializers.ModelSerializer):
    class Meta:
        model = DataExport
        fields = ("id", "status", "progress", "error", "created_at", "finished_at", "expires_at")


class ExportListApi(APIView):
    """The user's data exports; prepare a new one (built by a task: poll it for its progress)."""

    required_scopes = {"GET": Scope.ACCOUNT_EXPORT, "POST": Scope.ACCOUNT_EXPORT}

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(ExportSerializer, "Export")},
        tags=["privacy"],
    )
    def get(self, request):
        return paginated_response(
            request, self, DataExport.objects.for_user(request.user), ExportSerializer
        )

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(
                ExportSerializer, description="Queued (or the one already being prepared)."
            )
        },
        tags=["privacy"],
    )
    def post(self, request):
        export, _ = export_request(user=request.user)
        return Response(ExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(APIView):
    """One export: its status and progress (0-100)."""

    required_scopes = {"GET": Scope.ACCOUNT_EXPORT}

    @extend_schema(responses={200: ExportSerializer}, tags=["privacy"])
    def get(self, request, export_id: int):
        return Response(ExportSerializer(_export(request, export_id)).data)


class ExportDownloadApi(APIView):
    """The export's zip (export.json + export.md) while its link lasts; then 410 and the file is
    deleted."""

    required_scopes = {"GET": Scope.ACCOUNT_EXPORT}

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The archive."
            ),
            410: OpenApiResponse(
                ErrorSerializer, description="The link expired; the file is deleted."
            ),
        },
        tags=["privacy"],
    )
    def get(self, request, export_id: int):
        try:
            path, filename = export_archive(export=_export(request, export_id))
        except ExportExpired:
            return Response(
                {
                    "error": {
                        "code": "expired",
                        "message": "This export's link has expired. Prepare a new one.",
                    }
                },
                status=status.HTTP_410_GONE,
            )
        except ExportNotFound:
            raise Http404("This export is not ready.") from None
        return FileResponse(
            path.open("rb"), as_attachment=True, filename=filename, content_type="application/zip"
        )


def _export(request, export_id: int) -> DataExport:
    return get_object_or_404(
        DataExport.objects.for_user(request.user).select_related("user"), pk=export_id
    )


class AccessEventSerializer(serializers.ModelSerializer):
    app = serializers.CharField(source="app.name", allow_null=True, default=None)

    class Meta:
        model = AccessEvent
        fields = ("id", "actor", "purpose", "conversation", "api_key", "app", "items", "created_at")


class AccessLogApi(APIView):
    """Who used or read the user's memories, newest first: the assistant, API keys, apps, admins."""

    required_scopes = {"GET": Scope.ACCOUNT_SETTINGS}

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(AccessEventSerializer, "AccessEvent")},
        tags=["privacy"],
    )
    def get(self, request):
        events = (
            AccessEvent.objects.for_user(request.user)
            .select_related("app")
            .order_by("-created_at", "-id")
        )
        return paginated_response(request, self, events, AccessEventSerializer)


class ReceiptDocumentSerializer(serializers.Serializer):
    """For the schema only: responses carry the stored document as it was signed."""

    receipt = serializers.DictField(
        help_text="What was erased (counts per kind), when, the data key, the signing key's id."
    )
    signature = serializers.CharField(
        help_text="Ed25519, base64, over the receipt's canonical JSON."
    )


class ReceiptSerializer(serializers.ModelSerializer):
    erased = serializers.SerializerMethodField(help_text="Rows erased, per kind.")

    class Meta:
        model = ErasureReceipt
        fields = ("id", "kind", "created_at", "erased")

    def get_erased(self, receipt) -> dict[str, int]:
        return receipt.receipt["erased"]


class ReceiptListApi(APIView):
    """The user's erasure receipts, newest first: one per "forget everything" and per conversation
    deleted. They stay through "forget everything" and go with the account."""

    required_scopes = {"GET": Scope.ACCOUNT_ERASE}

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(ReceiptSerializer, "Receipt")},
        tags=["privacy"],
    )
    def get(self, request):
        return paginated_response(
            request, self, receipts_list(user=request.user), ReceiptSerializer
        )


class ReceiptDetailApi(APIView):
    """One signed receipt, byte for byte the file the portal offers: verify it with
    `manage.py verify_receipt` and the public key at /.well-known/memoryweb-receipt-keys."""

    required_scopes = {"GET": Scope.ACCOUNT_ERASE}

    @extend_schema(responses={200: ReceiptDocumentSerializer}, tags=["privacy"])
    def get(self, request, receipt_id):
        receipt = receipt_of_user(user=request.user, receipt_id=receipt_id)
        return receipt_response(
            receipt_id=receipt.pk, erased_at=receipt.created_at, document=receipt.document
        )


class ForgetApi(APIView):
    """Forget everything: every conversation, message, memory (with its history), episode, summary,
    digest and export; with `delete_account`, the account too. Asks for the typed confirmation."""

    required_scopes = {"POST": Scope.ACCOUNT_ERASE}

    class Input(serializers.Serializer):
        confirmation = serializers.CharField(help_text=f'Exactly "{FORGET_PHRASE}".')
        delete_account = serializers.BooleanField(default=False)
        password = serializers.CharField(
            required=False,
            write_only=True,
            help_text="Needed when called from a browser session (not with a key).",
        )

        def validate_confirmation(self, value: str) -> str:
            if value.strip().lower() != FORGET_PHRASE:
                raise serializers.ValidationError(f'Type exactly "{FORGET_PHRASE}".')
            return value

    class Output(serializers.Serializer):
        forgotten = serializers.BooleanField()
        account_deleted = serializers.BooleanField()
        receipt_id = serializers.UUIDField(
            help_text="Kept for download (GET /api/v1/me/receipts/{id}), unless the account "
            "was deleted: then this response is the only copy of the receipt."
        )
        receipt = ReceiptDocumentSerializer(help_text="The signed erasure receipt.")

    @extend_schema(request=Input, responses={200: Output}, tags=["privacy"])
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        confirm_password_for_session(request)
        delete_account = data.validated_data["delete_account"]
        receipt = forget_everything(user=request.user, delete_account=delete_account)
        if delete_account and isinstance(request.successful_authenticator, SessionAuthentication):
            logout(request._request)
        return Response(
            {
                "forgotten": True,
                "account_deleted": delete_account,
                "receipt_id": receipt.id,
                "receipt": receipt.data(),
            }
        )


class ApiKeySerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=ApiKey.Status.choices, read_only=True)

    class Meta:
        model = ApiKey
        fields = (
            "id",
            "name",
            "prefix",
            "scopes",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "status",
        )


class ApiKeyListApi(APIView):
    """The user's personal API keys (never the keys themselves), newest first. New keys are made on
    the portal's API keys page, with the password again."""

    required_scopes = {"GET": Scope.ACCOUNT_KEYS}

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(ApiKeySerializer, "ApiKey")},
        tags=["privacy"],
    )
    def get(self, request):
        return paginated_response(request, self, api_keys_list(user=request.user), ApiKeySerializer)


class ApiKeyRevokeApi(APIView):
    """Revoke one of the user's keys: refused from its next request; in the access log."""

    required_scopes = {"POST": Scope.ACCOUNT_KEYS}

    @extend_schema(request=None, responses={200: ApiKeySerializer}, tags=["privacy"])
    def post(self, request, key_id: int):
        api_key = api_key_of_user(user=request.user, key_id=key_id)
        actor = AccessEvent.Actor.API if api_key_of(request) else AccessEvent.Actor.USER
        api_key_revoke(api_key=api_key, actor=actor)
        return Response(ApiKeySerializer(api_key).data)
