from django.apps import AppConfig


class LinkisManagerConfig(AppConfig):
    name = "linkismanager"
    verbose_name = "Linkis manager"
    default_auto_field = "django.db.models.BigAutoField"
