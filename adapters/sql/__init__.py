"""SQLAlchemy adapter of `ports.repositories` (and a `ports.health` check): SQLite as the
embedded default, PostgreSQL in production. Schema changes go through `migrations/`.

Import from the modules (`engine`, `unit_of_work`, `health`, `bulk`, `migrations`): this
package re-exports nothing, so a web process never loads Alembic.
"""
