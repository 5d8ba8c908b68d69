"""The few `dbt.*` cross-database helpers the models call, as sqlfluff's jinja templater sees them
(.sqlfluff's library_path): Postgres spellings, so the linted SQL is the SQL dbt would run."""


def type_string() -> str:
    return "text"


def type_numeric() -> str:
    return "numeric"


def type_timestamp() -> str:
    return "timestamp"
