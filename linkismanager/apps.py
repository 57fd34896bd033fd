from django.apps import AppConfig


class LinkisManagerConfig(AppConfig):
    name = "linkismanager"
    verbose_name = "Linkis manager"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the Celery signals that carry request ids into tasks, in every process.
        from linkismanager import logcontext  # noqa: F401
