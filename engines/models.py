"""The engine registry: engines (EngineConns) and their history records."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Q

from linkismanager.choices import AVAILABLE_STATUSES, TERMINAL_STATUSES, NodeStatus
from linkismanager.models import EngineConnManager, HealthFields

__all__ = ["EngineConn", "EngineHistory"]


class EngineConnQuerySet(models.QuerySet["EngineConn"]):
    def live(self) -> EngineConnQuerySet:
        """Engines whose end is not recorded yet: they hold resources, whatever their status."""
        return self.filter(ended_at__isnull=True)

    def available(self) -> EngineConnQuerySet:
        """Live engines in a status that serves (Unlock, Locked, Idle, Busy)."""
        return self.live().filter(status__in=[str(s) for s in AVAILABLE_STATUSES])

    def by_instance(self, instance: str) -> EngineConn | None:
        """The engine at ``instance``: the live row, else the newest (ports are reused)."""
        if not instance:
            return None
        # NULL (live) first on every database, then the most recently ended.
        return self.filter(instance=instance).order_by(F("ended_at").desc(nulls_first=True), "-created").first()


class EngineConn(HealthFields):
    """One engine: a real OS process owned by one user, launched and killed by its ECM's agent.

    The ticket id is the engine's identity before it has a port. Status follows Linkis NodeStatus:
    ShuttingDown, Failed and Success are terminal and never change again. Recording the end
    (time, exit code, reason) is a separate, once-only step; until then the engine holds its
    resources.
    """

    ticket_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    instance = models.CharField(
        max_length=128, blank=True, default="", editable=False, help_text="host:port of its control port, once known."
    )
    ecm = models.ForeignKey(EngineConnManager, on_delete=models.PROTECT, related_name="engines")
    owner = models.CharField(max_length=150, help_text="The user the engine belongs to (userCreator's user).")
    creator = models.CharField(max_length=64, help_text="userCreator's creator, e.g. IDE.")
    engine_type = models.CharField(max_length=64, help_text="e.g. python, shell, spark.")
    engine_version = models.CharField(max_length=64, help_text="e.g. python3, 1, 2.4.3.")
    status = models.CharField(
        max_length=20, choices=NodeStatus.choices, default=NodeStatus.STARTING, editable=False, db_index=False
    )
    memory = models.BigIntegerField(help_text="Requested memory in bytes.")
    cores = models.IntegerField(help_text="Requested cores.")
    instances = models.IntegerField(default=1, help_text="Requested instances (always 1 for one process).")
    properties = models.JSONField(default=dict, blank=True, editable=False, help_text="The creation properties.")
    pid = models.IntegerField(null=True, blank=True, editable=False, help_text="The process id (Linkis identifier).")
    process_started_at = models.FloatField(
        null=True,
        blank=True,
        editable=False,
        help_text="The process's start time (epoch seconds) as the OS reports it; a kill checks it before signalling.",
    )
    control_secret = models.CharField(
        max_length=64, blank=True, editable=False, help_text="What callers must present to the control port."
    )
    log_dir = models.CharField(
        max_length=512, blank=True, editable=False, help_text="<user>/<yyyyMMdd>/<engineType>/<ticketId>/logs"
    )
    ready_at = models.DateTimeField(null=True, blank=True, editable=False, help_text="When it became Unlock.")
    last_heartbeat = models.DateTimeField(null=True, blank=True, editable=False, help_text="Its agent's last report.")
    last_activity = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="The last user action (code run, lock) as the runtime reports it: the idle clock.",
    )
    unresponsive_since = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Since when its runtime has not answered its agent."
    )
    metrics = models.JSONField(
        default=dict, blank=True, editable=False, help_text="What the runtime and the agent last reported (rss, cpu …)."
    )
    kill_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    kill_requested_by = models.CharField(max_length=150, blank=True, editable=False)
    ended_at = models.DateTimeField(null=True, blank=True, editable=False, help_text="When its end was recorded.")
    exit_code = models.IntegerField(
        null=True, blank=True, editable=False, help_text="Exit code; negative for a signal."
    )
    end_reason = models.TextField(blank=True, editable=False, help_text="Why it ended or failed.")
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    objects = EngineConnQuerySet.as_manager()

    class Meta:
        verbose_name = "engine"
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["instance"],
                condition=Q(ended_at__isnull=True) & ~Q(instance=""),
                name="one_live_engine_per_instance",
                violation_error_message="Another live engine already has this instance.",
            ),
            models.CheckConstraint(
                condition=Q(memory__gte=0, cores__gte=0, instances__gte=0),
                name="engine_resources_not_negative",
                violation_error_message="Requested resources cannot be negative.",
            ),
        ]
        indexes = [
            # Derived totals and placement sum the live engines of one ECM or one user.
            models.Index(fields=["ecm", "status"], condition=Q(ended_at__isnull=True), name="engine_live_by_ecm"),
            models.Index(
                fields=["owner", "creator", "engine_type", "engine_version"],
                condition=Q(ended_at__isnull=True),
                name="engine_live_by_user",
            ),
            # The sweeps look at live engines by status and by their clocks: engines.sweeps'
            # fail_engines_stuck_starting and resend_stuck_kills (status, modified < cutoff) and
            # cull_idle_engines (engine_unlock_idle: last_activity < cutoff).
            models.Index(fields=["status", "modified"], condition=Q(ended_at__isnull=True), name="engine_live_status"),
            models.Index(
                fields=["last_activity"], condition=Q(ended_at__isnull=True, status="Unlock"), name="engine_unlock_idle"
            ),
            # Listing an ECM's engines and looking engines up by instance.
            models.Index(fields=["instance"], name="engine_instance"),
            # linkismanager.sweeps.prune_ended_engines (ended_at < cutoff).
            models.Index(fields=["ended_at"], condition=Q(ended_at__isnull=False), name="engine_ended"),
            # engines.sweeps.resend_stuck_kills: live engines whose kill is pending (kill_requested_at < cutoff).
            models.Index(
                fields=["kill_requested_at"],
                condition=Q(ended_at__isnull=True, kill_requested_at__isnull=False),
                name="engine_kill_pending",
            ),
            # engines.sweeps.fail_unresponsive_engines: live engines whose runtime stopped answering
            # (unresponsive_since < cutoff).
            models.Index(
                fields=["unresponsive_since"],
                condition=Q(ended_at__isnull=True, unresponsive_since__isnull=False),
                name="engine_unresponsive",
            ),
        ]

    def __str__(self) -> str:
        return self.instance or str(self.ticket_id)

    @property
    def is_terminal(self) -> bool:
        """Whether its status can no longer change."""
        return self.status in TERMINAL_STATUSES

    @property
    def is_live(self) -> bool:
        """Whether it still holds resources (its end is not recorded)."""
        return self.ended_at is None

    @property
    def engine_type_label(self) -> str:
        """The engineType label value, ``<type>-<version>``."""
        return f"{self.engine_type}-{self.engine_version}"

    @property
    def user_creator(self) -> str:
        """The userCreator label value, ``<user>-<creator>``."""
        return f"{self.owner}-{self.creator}"


class EngineHistory(models.Model):
    """Linkis' EC resource record (``ecinfo``): one per ticket id, outliving the engine."""

    ticket_id = models.UUIDField(unique=True)
    label_value = models.CharField(max_length=255, help_text="<user>-<creator>,<type>-<version>")
    create_user = models.CharField(max_length=150)
    engine_type = models.CharField(max_length=64)
    service_instance = models.CharField(max_length=128, blank=True)
    ecm_instance = models.CharField(max_length=128)
    status = models.CharField(max_length=20, choices=NodeStatus.choices)
    log_dir_suffix = models.CharField(max_length=512, blank=True)
    request_resource = models.JSONField(default=dict)
    request_times = models.IntegerField(default=0)
    used_resource = models.JSONField(default=dict, blank=True)
    used_times = models.IntegerField(default=0)
    used_time = models.DateTimeField(null=True, blank=True)
    released_resource = models.JSONField(default=dict, blank=True)
    release_times = models.IntegerField(default=0)
    release_time = models.DateTimeField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "engine history"
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["create_user", "-created"], name="history_by_user"),
            models.Index(fields=["service_instance"], name="history_by_instance"),
            models.Index(fields=["created"], name="history_created"),
        ]

    def __str__(self) -> str:
        return f"{self.label_value} {self.ticket_id}"
