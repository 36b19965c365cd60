"""Grafana dashboards as code, their provisioning, and the self-contained HTML report.

Why code: panels are SQL over the ClickHouse facts, and SQL that is generated, versioned and executed
by tests against the real engine cannot silently drift from the schema the sink writes.
"""
