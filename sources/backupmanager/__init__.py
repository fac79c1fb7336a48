"""BackupManager: schedule, centralize, rotate and restore the backups of a YunoHost server."""

__version__ = "0.1.0"
