"""Operating the platform: DAG runs through Airflow's REST API (dag_runs) and the data pipeline's health (health)."""
