"""The storage contract: one suite, run against every `Storage` implementation."""
