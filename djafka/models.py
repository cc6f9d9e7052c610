"""Platform-wide models: tenants, their quotas, their API keys and their admin users."""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

TENANT_NAME_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9-]{0,62}$",
    "Use 1 to 63 lower-case letters, digits and hyphens, starting with a letter or digit.",
)


class Tenant(models.Model):
    """A customer of the hosted service: owns topics, groups, connectors and keys."""

    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[TENANT_NAME_VALIDATOR],
        help_text="Short, stable identifier, e.g. 'acme'.",
    )
    display_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(
        default=True, help_text="An inactive tenant's keys stop authenticating."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # Quotas: a blank value means no limit. Enforced where the bytes or partitions arrive.
    max_partitions = models.PositiveIntegerField(
        null=True, blank=True, help_text="Partitions over all the tenant's topics."
    )
    max_storage_bytes = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Log bytes over all the tenant's partition leaders."
    )
    produce_byte_rate = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Bytes per second the tenant may produce."
    )
    consume_byte_rate = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Bytes per second the tenant may fetch."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: object, **kwargs: object) -> None:
        # A deactivated tenant's keys must stop working here at once (see ApiKey.authenticate).
        forget_authenticated_keys()
        super().save(*args, **kwargs)


class TenantMembership(models.Model):
    """Makes a user one tenant's admin: in Django admin they see and change only that tenant."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tenant_membership"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant}"


@dataclass(frozen=True)
class IssuedKey:
    """A freshly made key: the only moment its secret exists outside the client's hands."""

    api_key: "ApiKey"
    token: str

    @property
    def secret(self) -> str:
        return self.token.split(".", 1)[1]


# Keys that authenticated recently in this process: prefix -> (valid until, key).
_authenticated: dict[str, tuple[float, "ApiKey"]] = {}


def forget_authenticated_keys() -> None:
    """Drop this process's remembered keys (a key was revoked or a tenant changed)."""
    _authenticated.clear()


def hash_secret(secret: str) -> str:
    """SHA-256 of a key's secret.

    A key's secret is 256 random bits, so a fast hash is safe here (as for GitHub tokens); a
    password hasher would make every authenticated request pay hundreds of milliseconds.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet):
    def active(self) -> "ApiKeyQuerySet":
        return self.filter(revoked_at__isnull=True, tenant__is_active=True)


class ApiKey(models.Model):
    """A tenant's credential for REST, websockets and Kafka clients (SASL/PLAIN).

    The token is ``<prefix>.<secret>``; only the prefix (for lookup) and a hash of the secret
    are stored. Kafka clients send the prefix as username and the secret as password.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, help_text="What the key is for, e.g. 'billing app'.")
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix} ({self.name})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def set_new_secret(self) -> str:
        """Give an unsaved key its prefix and secret; return the token, which is never stored."""
        self.prefix = settings.DJAFKA_API_KEY_PREFIX + secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        self.secret_hash = hash_secret(secret)
        return f"{self.prefix}.{secret}"

    @classmethod
    def issue(cls, tenant: Tenant, name: str) -> IssuedKey:
        """Make and save a new key for ``tenant``; the token in the answer is never stored."""
        api_key = cls(tenant=tenant, name=name)
        token = api_key.set_new_secret()
        api_key.save()
        return IssuedKey(api_key=api_key, token=token)

    @classmethod
    def authenticate(cls, prefix: str, secret: str) -> "ApiKey | None":
        """The active key with this prefix and secret, or None. Marks it used.

        A key that authenticated is remembered by this process for
        ``DJAFKA_API_KEY_CACHE_S`` (5 s): a busy REST client pays no query per request. A key
        revoked (or its tenant deactivated) in this process is forgotten at once; in other
        processes it stops working within that time.
        """
        secret_hash = hash_secret(secret)
        cached = _authenticated.get(prefix)
        if cached is not None and cached[0] > time.monotonic():
            api_key = cached[1]
            if hmac.compare_digest(api_key.secret_hash, secret_hash):
                api_key.mark_used()
                return api_key
        api_key = cls.objects.active().select_related("tenant").filter(prefix=prefix).first()
        if api_key is None or not hmac.compare_digest(api_key.secret_hash, secret_hash):
            return None
        if settings.DJAFKA_API_KEY_CACHE_S > 0:
            _authenticated[prefix] = (time.monotonic() + settings.DJAFKA_API_KEY_CACHE_S, api_key)
        api_key.mark_used()
        return api_key

    @classmethod
    def authenticate_token(cls, token: str) -> "ApiKey | None":
        """Like :meth:`authenticate`, for a whole ``<prefix>.<secret>`` token."""
        prefix, dot, secret = token.strip().partition(".")
        if not dot or not prefix or not secret:
            return None
        return cls.authenticate(prefix, secret)

    def mark_used(self) -> None:
        """Record the use, at most once per resolution window so reads stay write-free."""
        now = timezone.now()
        window = settings.DJAFKA_KEY_LAST_USED_RESOLUTION_S
        if self.last_used_at is None or (now - self.last_used_at).total_seconds() >= window:
            ApiKey.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now

    def revoke(self) -> None:
        forget_authenticated_keys()
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
