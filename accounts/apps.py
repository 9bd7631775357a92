from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "People and access"

    def ready(self) -> None:
        from accounts import receivers  # noqa: F401  (sign-out and deactivation close sockets)
