"""The platform's FastAPI service: real-time look-ups for Magento, operations and analysts."""
