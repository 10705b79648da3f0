"""Helpers of tests/e2e/test_privacy.py: the audit hook, an audited session, /proc parsing."""
