from django.apps import AppConfig


class OncallConfig(AppConfig):
    name = "oncall"

    def ready(self) -> None:
        from oncall import receivers  # noqa: F401  (wires incident_changed)
