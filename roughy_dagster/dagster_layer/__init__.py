"""The Dagster layer: thin glue (resource, assets, sensors, schedules) over the client, store and sync."""
