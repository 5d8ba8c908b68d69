"""The embedded default stack: one Postgres cluster, Airflow, the API and the sandboxes."""
