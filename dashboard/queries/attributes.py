"""The custom data attributes Intercom holds, against the workspace's limit."""

from dataclasses import dataclass

from forwarding.delivery import attributes
from forwarding.models import DataAttribute

ATTRIBUTES_SHOWN = 2000


@dataclass
class AttributeUsage:
    """Custom data attributes Intercom holds (as last seen) against the workspace's limit."""

    used: int
    limit: int

    @property
    def share(self):
        return self.used / self.limit if self.limit else 1

    @property
    def percent(self):
        return min(100, round(100 * self.share))

    @property
    def free(self):
        return max(self.limit - self.used, 0)


def attribute_usage(workspace):
    return AttributeUsage(attributes.in_intercom(workspace).count(), attributes.limit())


def data_attributes(workspace, limit=ATTRIBUTES_SHOWN):
    """The workspace's attribute rows, contacts' then companies', by name (at most `limit`)."""
    return list(DataAttribute.objects.filter(workspace=workspace).order_by("model", "name")[:limit])
