from django.apps import AppConfig


class ForwardingConfig(AppConfig):
    name = "forwarding"
    verbose_name = "Forwarding"

    def ready(self):
        from forwarding import checks  # noqa: F401  (registers the system checks)
