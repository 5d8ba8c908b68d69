"""What each DAG's tasks do, kept out of dags/ so the DAG files stay thin and the logic testable."""
