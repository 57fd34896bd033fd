"""Models of the manager app."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from linkismanager.choices import AVAILABLE_HEALTH, NodeHealthy, NodeStatus

__all__ = [
    "AuditEntry",
    "EngineConnManager",
    "HealthFields",
    "HealthRecord",
    "Label",
    "NodeKind",
    "SweepRun",
    "Token",
    "UserQuota",
]


class TokenQuerySet(models.QuerySet["Token"]):
    def for_code(self, code: str) -> Token | None:
        """The token whose secret is ``code``, or None."""
        return self.filter(key_hash=Token.hash_code(code)).first()


class Token(models.Model):
    """A Linkis access token: the ``Token-Code`` header, acting as the ``Token-User`` header's user.

    Only a hash of the code is stored; the code itself is shown once, when the token is made.
    """

    ANY = "*"

    name = models.CharField(max_length=128, unique=True, help_text="What the token is for, shown to staff.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False, help_text="SHA-256 of the token code.")
    key_prefix = models.CharField(
        max_length=8, editable=False, help_text="First characters of the code, to tell tokens apart."
    )
    legal_users = models.TextField(
        default=ANY,
        help_text="Comma-separated user names the token may act as, or * for any user.",
    )
    legal_hosts = models.TextField(
        default=ANY,
        help_text="Comma-separated client addresses or networks (CIDR) allowed to use the token, or * for any.",
    )
    is_admin = models.BooleanField(
        default=False, help_text="Grants Linkis admin rights to requests made with the token."
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="After this time the token is refused; empty for never."
    )
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    objects = TokenQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @staticmethod
    def hash_code(code: str) -> str:
        """The stored form of a token code."""
        return hashlib.sha256(code.encode()).hexdigest()

    @staticmethod
    def generate_code() -> str:
        """A new random token code."""
        return secrets.token_urlsafe(32)

    def set_code(self, code: str) -> None:
        """Replace the token's code (not saved)."""
        self.key_hash = self.hash_code(code)
        self.key_prefix = code[:8]

    def _items(self, text: str) -> list[str]:
        return [item.strip() for item in text.split(",") if item.strip()]

    def is_expired(self, now=None) -> bool:
        """Whether the token has passed its expiry time."""
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def allows_user(self, user_name: str) -> bool:
        """Whether the token may act as ``user_name`` (user names are case-sensitive)."""
        users = self._items(self.legal_users)
        return self.ANY in users or user_name in users

    def allows_host(self, address: str | None) -> bool:
        """Whether a client at ``address`` may use the token."""
        hosts = self._items(self.legal_hosts)
        if self.ANY in hosts:
            return True
        if not address:
            return False
        try:
            client = ipaddress.ip_address(address)
        except ValueError:
            return False
        for host in hosts:
            try:
                if client in ipaddress.ip_network(host, strict=False):
                    return True
            except ValueError:
                continue
        return False


class NodeKind(models.TextChoices):
    """The two kinds of Linkis node, by their Linkis application names."""

    ECM = "linkis-cg-engineconnmanager", "ECM"
    ENGINE = "linkis-cg-engineconn", "Engine"


class HealthFields(models.Model):
    """Health as its node reports it, and as an admin may have pinned it.

    The effective health is the pin when there is one, else the reported value. Health is never
    stored a third time, so the two can never disagree with it.
    """

    reported_health = models.CharField(
        max_length=20,
        choices=NodeHealthy.choices,
        default=NodeHealthy.HEALTHY,
        editable=False,
        help_text="Health as the node (or its agent) last reported it.",
    )
    pinned_health = models.CharField(
        max_length=20,
        choices=NodeHealthy.choices,
        null=True,
        blank=True,
        editable=False,
        help_text="Health set by an admin; it stays until an admin sets Healthy. Empty when not pinned.",
    )
    pinned_by = models.CharField(max_length=150, blank=True, editable=False, help_text="Who pinned the health.")
    pinned_at = models.DateTimeField(null=True, blank=True, editable=False, help_text="When the health was pinned.")
    pinned_reason = models.TextField(blank=True, editable=False, help_text="Why the health was pinned.")

    class Meta:
        abstract = True

    @property
    def health(self) -> str:
        """The effective health: the admin's pin, else the reported health."""
        return self.pinned_health or self.reported_health


class EngineConnManagerQuerySet(models.QuerySet["EngineConnManager"]):
    def placeable(self) -> EngineConnManagerQuerySet:
        """ECMs that may receive new engines: running, not lost, with an available effective health."""
        available = [str(value) for value in AVAILABLE_HEALTH]
        return self.filter(status=NodeStatus.RUNNING, lost_at__isnull=True).filter(
            Q(pinned_health__in=available) | Q(pinned_health__isnull=True, reported_health__in=available)
        )


class EngineConnManager(HealthFields):
    """An ECM: the agent on one host that launches and kills engine processes.

    Capacity is in Linkis' allocation units (memory bytes, cores, instances). What is used and
    locked is derived from the engines on it that have not ended, never kept as counters.
    """

    instance = models.CharField(max_length=128, unique=True, help_text="host:port of the agent.")
    owner = models.CharField(max_length=150, help_text="The OS user the agent runs as.")
    status = models.CharField(
        max_length=20,
        choices=NodeStatus.choices,
        default=NodeStatus.STARTING,
        editable=False,
        help_text="Starting until the agent registers, Running while it is up, ShuttingDown when it stops.",
    )
    max_memory = models.BigIntegerField(help_text="Memory capacity in bytes.")
    max_cores = models.IntegerField(help_text="Core capacity.")
    max_instances = models.IntegerField(help_text="How many engines it may run.")
    min_memory = models.BigIntegerField(default=0, help_text="Protected memory reserve in bytes, never allocated.")
    min_cores = models.IntegerField(default=0, help_text="Protected core reserve, never allocated.")
    min_instances = models.IntegerField(default=0, help_text="Protected instance reserve, never allocated.")
    description = models.CharField(max_length=256, blank=True, default="", help_text="A remark staff keep on the host.")
    last_heartbeat = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Database time of the agent's last heartbeat."
    )
    lost_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the sweep declared the ECM lost (heartbeat too late); cleared when it reports again.",
    )
    host_metrics = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Host figures from the last heartbeat (maxMemory, usedMemory, systemCPUUsed, systemLeftMemory).",
    )
    registered_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the agent last registered."
    )
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    objects = EngineConnManagerQuerySet.as_manager()

    class Meta:
        verbose_name = "ECM"
        verbose_name_plural = "ECMs"
        ordering = ["instance"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_memory__gte=0, max_cores__gte=0, max_instances__gte=0),
                name="ecm_capacity_not_negative",
                violation_error_message="Capacity cannot be negative.",
            ),
            models.CheckConstraint(
                condition=Q(min_memory__gte=0, min_cores__gte=0, min_instances__gte=0),
                name="ecm_reserve_not_negative",
                violation_error_message="The protected reserve cannot be negative.",
            ),
        ]
        indexes = [
            # The heartbeat sweep looks for ECMs whose heartbeat is late.
            models.Index(fields=["last_heartbeat"], name="ecm_last_heartbeat"),
            # linkismanager.sweeps.mark_late_ecms: late ECMs the sweep has not made UnHealthy yet
            # (last_heartbeat < cutoff, reported_health != UnHealthy).
            models.Index(
                fields=["last_heartbeat"],
                condition=~Q(reported_health="UnHealthy"),
                name="ecm_late_candidates",
            ),
            # linkismanager.sweeps.mark_lost_ecms: ECMs not yet lost (last_heartbeat < cutoff, lost_at null).
            models.Index(fields=["last_heartbeat"], condition=Q(lost_at__isnull=True), name="ecm_not_lost"),
            # engines.sweeps.release_engines_of_lost_ecms: the lost ECMs, whose live engines it then releases.
            models.Index(fields=["lost_at"], condition=Q(lost_at__isnull=False), name="ecm_lost"),
        ]

    def __str__(self) -> str:
        return self.instance

    @property
    def health(self) -> str:
        """Effective health: UnHealthy while lost (the pin is kept), else the pin, else reported."""
        if self.lost_at is not None:
            return NodeHealthy.UNHEALTHY
        return super().health


class Label(models.Model):
    """A Linkis label (key and stringValue) attached to an ECM or to an engine, one per key."""

    ecm = models.ForeignKey(EngineConnManager, null=True, blank=True, on_delete=models.CASCADE, related_name="labels")
    engine = models.ForeignKey(
        "engines.EngineConn", null=True, blank=True, on_delete=models.CASCADE, related_name="labels"
    )
    key = models.CharField(max_length=32, help_text="labelKey, e.g. userCreator, engineType, tenant.")
    value = models.CharField(max_length=255, help_text="stringValue, e.g. alice-IDE or python-python3.")
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(ecm__isnull=False) & Q(engine__isnull=True))
                | (Q(ecm__isnull=True) & Q(engine__isnull=False)),
                name="label_on_exactly_one_node",
                violation_error_message="A label belongs to exactly one ECM or one engine.",
            ),
            models.UniqueConstraint(
                fields=["ecm", "key"],
                condition=Q(ecm__isnull=False),
                name="one_value_per_key_per_ecm",
                violation_error_message="An ECM has one value per label key.",
            ),
            models.UniqueConstraint(
                fields=["engine", "key"],
                condition=Q(engine__isnull=False),
                name="one_value_per_key_per_engine",
                violation_error_message="An engine has one value per label key.",
            ),
        ]
        indexes = [
            # Placement and filters look ECMs up by label (tenant) and engines by label value.
            models.Index(fields=["key", "value"], name="label_key_value"),
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class HealthSource(models.TextChoices):
    """Who caused a status or health change."""

    HEARTBEAT = "heartbeat"
    ADMIN = "admin"
    SWEEP = "sweep"
    AGENT = "agent"
    API = "api"


class HealthRecord(models.Model):
    """One status or health change of a node; append-only history, pruned on a schedule."""

    class Field(models.TextChoices):
        STATUS = "status"
        HEALTH = "health"

    node_kind = models.CharField(max_length=40, choices=NodeKind.choices)
    ecm = models.ForeignKey(
        EngineConnManager, null=True, blank=True, on_delete=models.CASCADE, related_name="health_records"
    )
    engine = models.ForeignKey(
        "engines.EngineConn", null=True, blank=True, on_delete=models.CASCADE, related_name="health_records"
    )
    instance = models.CharField(max_length=128, blank=True, help_text="The node's instance at the time.")
    field = models.CharField(max_length=10, choices=Field.choices, help_text="What changed: status or health.")
    old = models.CharField(max_length=20, blank=True)
    new = models.CharField(max_length=20)
    source = models.CharField(max_length=10, choices=HealthSource.choices)
    actor = models.CharField(max_length=150, blank=True, help_text="The user, agent or sweep that made the change.")
    reason = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.instance} {self.field} {self.old}→{self.new}"


class UserQuota(models.Model):
    """Limits for one user + creator + engine type with version (e.g. alice, IDE, python-python3).

    A limit left empty takes the default from the settings. A row whose limits are all empty is
    not an admin override: admission creates such rows only to have a row to lock.
    """

    user = models.CharField(max_length=150)
    creator = models.CharField(max_length=64)
    engine_type = models.CharField(max_length=128, help_text="Engine type with version, e.g. python-python3.")
    max_memory = models.BigIntegerField(null=True, blank=True, help_text="Memory in bytes; empty for the default.")
    max_cores = models.IntegerField(null=True, blank=True, help_text="Cores; empty for the default.")
    max_instances = models.IntegerField(null=True, blank=True, help_text="Engines; empty for the default.")
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user", "creator", "engine_type"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "creator", "engine_type"],
                name="one_quota_per_user_creator_engine_type",
                violation_error_message="There is already a quota for this user, creator and engine type.",
            ),
            models.CheckConstraint(
                condition=(Q(max_memory__isnull=True) | Q(max_memory__gte=0))
                & (Q(max_cores__isnull=True) | Q(max_cores__gte=0))
                & (Q(max_instances__isnull=True) | Q(max_instances__gte=0)),
                name="quota_not_negative",
                violation_error_message="Quota limits cannot be negative.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}-{self.creator},{self.engine_type}"

    @property
    def is_override(self) -> bool:
        """Whether an admin set any limit on this row."""
        return any(value is not None for value in (self.max_memory, self.max_cores, self.max_instances))

    def limits(self) -> tuple[int, int, int]:
        """(memory bytes, cores, instances), defaults filled in from the settings."""
        return (
            self.max_memory if self.max_memory is not None else settings.USER_QUOTA_MEMORY,
            self.max_cores if self.max_cores is not None else settings.USER_QUOTA_CORES,
            self.max_instances if self.max_instances is not None else settings.USER_QUOTA_INSTANCES,
        )


class AuditEntry(models.Model):
    """One mutation through the API, the admin or a sweep: who did what to which object."""

    actor = models.CharField(max_length=150, help_text="The user, token user, agent or sweep.")
    via = models.CharField(max_length=20, help_text="api, admin, sweep or agent.")
    action = models.CharField(max_length=64, help_text="What was done, e.g. kill_engine, pin_health.")
    target_type = models.CharField(max_length=32, help_text="ecm, engine, quota, token …")
    target = models.CharField(max_length=255, help_text="The object's instance or name.")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target}"


class SweepRun(models.Model):
    """The figures of the last run of one periodic sweep (one row per sweep), for metrics.

    Kept in the database rather than a cache: the sweep runs in a Celery worker and the metrics are
    read by the web processes, which share the database in every deployment but not a local cache.
    """

    name = models.CharField(max_length=64, unique=True, help_text="The sweep: health or housekeeping.")
    runs = models.PositiveBigIntegerField(default=0, help_text="How many runs have finished.")
    last_started = models.DateTimeField(null=True, blank=True, help_text="Database time the last run began.")
    last_duration = models.FloatField(default=0.0, help_text="Seconds the last run took.")
    last_counts = models.JSONField(default=dict, blank=True, help_text="What the last run changed, per rule.")
    last_errors = models.IntegerField(default=0, help_text="Rows or rules that failed in the last run.")
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} sweep"
