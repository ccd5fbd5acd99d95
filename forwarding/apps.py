from django.apps import AppConfig


class ForwardingConfig(AppConfig):
    name = "forwarding"
    verbose_name = "Forwarding"

    def ready(self):
        from django.db.models.signals import post_migrate

        from forwarding import checks  # noqa: F401  (registers the system checks)
        from forwarding.schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self)

        from django_q.signals import post_execute_in_worker, post_spawn

        from forwarding.delivery.worker_starts import task_done, worker_started

        post_spawn.connect(worker_started, dispatch_uid="relay-worker-started")
        post_execute_in_worker.connect(task_done, dispatch_uid="relay-task-done")
