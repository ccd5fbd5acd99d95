"""ModelAdmins of the dashboard."""
