from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke


class Command(BaseCommand):
    help = "Create, list or revoke a user's personal API keys. A new key is printed once."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("username")
        create.add_argument("--name", default="personal")
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
            _, key = api_key_create(user=user, name=options["name"])
            self.stdout.write(key)
            self.stderr.write("Store this key now: it is not kept and cannot be shown again.")
        elif action == "list":
            for k in ApiKey.objects.for_user(user).order_by("created_at"):
                state = "revoked" if k.revoked_at else "active"
                self.stdout.write(
                    f"{k.prefix}…  {k.name}  {state}  last used {k.last_used_at or 'never'}"
                )
        else:
            keys = ApiKey.objects.for_user(user).active().filter(prefix=options["prefix"])
            if not keys:
                raise CommandError("No active key with that prefix.")
            for k in keys:
                api_key_revoke(api_key=k)
            self.stdout.write(f"Revoked {len(keys)} key(s).")
