from django.apps import AppConfig


class WebConfig(AppConfig):
    """The on-call web UI: server-rendered pages over the apps' verbs and selectors."""

    name = "web"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from web import receivers  # noqa: F401  (live updates of the incident list)
