from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import AccessEvent, ApiKey
from accounts.scopes import ALL_SCOPES
from accounts.services import api_key_create, api_key_revoke


class Command(BaseCommand):
    help = (
        "Create, list or revoke a user's personal API keys. A new key is printed once. Without "
        "--scope, a new key has every scope."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("username")
        create.add_argument("--name", default="personal")
        create.add_argument(
            "--scope",
            action="append",
            choices=ALL_SCOPES,
            dest="scopes",
            help="What the key may do; repeat for several (default: every scope).",
        )
        create.add_argument(
            "--expires-days", type=int, help="The key stops working after this many days."
        )
        listing = sub.add_parser("list")
        listing.add_argument("username")
        revoke = sub.add_parser("revoke")
        revoke.add_argument("username")
        revoke.add_argument("prefix")

    def handle(self, *args, action, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if action == "create":
            try:
                api_key, key = api_key_create(
                    user=user,
                    name=options["name"],
                    scopes=options["scopes"] or ALL_SCOPES,
                    expires_in_days=options["expires_days"],
                    actor=AccessEvent.Actor.ADMIN,
                )
            except ValueError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(key)
            expires = (
                f"expires {api_key.expires_at:%Y-%m-%d}" if api_key.expires_at else "never expires"
            )
            self.stderr.write(
                f"Scopes: {', '.join(api_key.scopes)}; {expires}.\n"
                "Store this key now: it is not kept and cannot be shown again."
            )
        elif action == "list":
            for k in ApiKey.objects.for_user(user).order_by("created_at"):
                expires = k.expires_at or "never"
                self.stdout.write(
                    f"{k.prefix}…  {k.name}  {k.status}  scopes {','.join(k.scopes)}  "
                    f"expires {expires}  last used {k.last_used_at or 'never'}"
                )
        else:
            keys = ApiKey.objects.for_user(user).filter(
                prefix=options["prefix"], revoked_at__isnull=True
            )
            if not keys:
                raise CommandError("No key with that prefix that is not already revoked.")
            for k in keys:
                api_key_revoke(api_key=k, actor=AccessEvent.Actor.ADMIN)
            self.stdout.write(f"Revoked {len(keys)} key(s).")
