-- Alerts about a platform component (an Airflow scheduler, dag-processor or triggerer) that stays
-- unhealthy, next to the task failure and retry alerts: dag_id 'airflow', task_id the component,
-- run_id the outage (its last heartbeat), so one outage alerts once.
ALTER TABLE oms.alert_log DROP CONSTRAINT IF EXISTS alert_log_kind_check;
ALTER TABLE oms.alert_log ADD CONSTRAINT alert_log_kind_check CHECK (kind IN ('failure', 'retry', 'component_down'));
