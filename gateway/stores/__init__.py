"""The plumbing Panorama's own stores share: the identity crosswalk, the audit log and the
consent store each keep their tables in a SQLite file or a PostgreSQL schema, named by a store
URL, and each sees its own error tree only.

- ``location``: store URLs (parsing, redaction) and the config section that names one;
- ``types``: what the database layer needs to know of a store (:class:`ErrorKinds`, migrations);
- ``sqlite``, ``postgres``: a migrated database, library exceptions translated into the
  store's errors with a hint (the only modules here that import aiosqlite and asyncpg).
"""
