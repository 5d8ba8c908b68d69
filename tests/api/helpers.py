"""Shared by the API contract tests and the fuzzer."""

WEBHOOK_KEY = "api-tests-webhook-key"
