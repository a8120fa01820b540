"""Backups by concept: logical dumps (dumps), restoring them (restore, cron), verification (verify),
retention (retention), private files (files), and point-in-time recovery with pgBackRest (pgbackrest).

Domain functions only; the CLI (cli/backups.py) renders progress and errors. The names below are the
package's public face; the modules hold the rest.
"""

from .common import BackupError
from .dumps import Progress, backup, last_success, record_success
from .files import FILE_MODE, FOLDER_MODE, LAST_SUCCESS_FILE, METRICS_FILE, private_folder
from .restore import RestoreResult, inspect_dump, replace, restore
from .retention import DEFAULT_PREFIX, apply_retention, dumps_in
from .verify import (SECRET_TABLES, TableState, VerifyError, VerifyReport, compare_states, secret_rows,
                     table_states, verify_dump)

# The brief's name for it; `verify_dump` avoids shadowing backup()'s `verify` flag inside the package.
verify = verify_dump

__all__ = [
    "DEFAULT_PREFIX", "FILE_MODE", "FOLDER_MODE", "LAST_SUCCESS_FILE", "METRICS_FILE", "SECRET_TABLES",
    "BackupError", "Progress", "RestoreResult", "TableState", "VerifyError", "VerifyReport",
    "apply_retention", "backup", "compare_states", "dumps_in", "inspect_dump", "last_success", "private_folder",
    "record_success", "replace", "restore", "secret_rows", "table_states", "verify", "verify_dump",
]
