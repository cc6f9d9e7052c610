"""Issue an API key for a tenant and print its token once."""

from django.core.management.base import BaseCommand, CommandError

from djafka.models import ApiKey, Tenant


class Command(BaseCommand):
    help = "Issue a new API key for TENANT (created if missing with --create) and print it."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("tenant")
        parser.add_argument("--name", default="cli key")
        parser.add_argument("--create", action="store_true", help="Create the tenant if missing.")

    def handle(
        self, *args: object, tenant: str, name: str, create: bool, **options: object
    ) -> None:
        found = Tenant.objects.filter(name=tenant).first()
        if found is None:
            if not create:
                raise CommandError(f"No tenant named '{tenant}'; pass --create to make it.")
            found = Tenant(name=tenant)
            found.full_clean()
            found.save()
        self.stdout.write(ApiKey.issue(found, name).token)
