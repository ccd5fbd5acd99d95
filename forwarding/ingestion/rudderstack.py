"""The source configuration RudderStack's JavaScript SDK (v3) fetches before it sends anything."""

WORKSPACE_ID = "intercom-relay"
# Otherwise the SDK reports its own errors and metrics to the data plane (/rsaMetrics).
NO_STATS = {"errors": {"enabled": False}, "metrics": {"enabled": False}}


def source_config_document(source):
    """`GET /sourceConfig/`: an enabled source with no device-mode destinations.

    The SDK then sends every call to its data plane (the relay) and loads no destination code. It
    needs `source.id`, `source.config` and `source.destinations` (else it never becomes ready) and
    stops at `enabled: false`. Like the settings document, it gives nothing stored back: the id is
    made of the key prefix, which the caller holds already; no name, no dates.
    """
    return {
        "isHosted": True,
        "source": {
            "id": f"relay-{source.key_prefix}",
            "workspaceId": WORKSPACE_ID,
            "enabled": True,  # only an active source's key is answered
            "config": {"statsCollection": NO_STATS},
            "destinations": [],
        },
    }
