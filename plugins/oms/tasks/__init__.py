"""One module per DAG: what the DAG's tasks do, with the Airflow connections they need.

dags/<dag>.py stays a thin file (schedule, task graph, docs) and each task calls one function of
oms.tasks.<dag> with the run's context values (data interval, run id). That function looks the
connections up (oms.integrations.connections) at run time and calls the domain code, which takes a
DSN and clients and is tested without Airflow.
"""
