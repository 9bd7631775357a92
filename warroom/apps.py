from django.apps import AppConfig


class WarroomConfig(AppConfig):
    name = "warroom"

    def ready(self) -> None:
        from warroom import receivers  # noqa: F401  (wires incident_changed: the bot)
