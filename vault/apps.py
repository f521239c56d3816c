from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "vault"
    verbose_name = "Encryption keys"

    def ready(self):
        from vault import checks  # noqa: F401  (registers the system checks)
