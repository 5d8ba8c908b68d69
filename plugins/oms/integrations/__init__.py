"""Outside systems, one client each: Magento, Clickpost, the ERP, SMS/SMTP and Airflow's REST API."""
