"""Messages printed by the simulated CLI, and the errors that carry them.

The English texts are those of YunoHost 12.1.25 and moulinette 12.0 (their locale files),
so that code matching on them behaves as on a real server (YUNOHOST.md §2.1).
"""

from __future__ import annotations

from typing import Any

MESSAGES: dict[str, str] = {
    # moulinette (lock, prompts, argument validation) - YUNOHOST.md §2.1
    "instance_already_running": (
        "There is already a YunoHost operation running. "
        "Please wait for it to finish before running another one."
    ),
    "warn_the_user_about_waiting_lock": (
        "Another YunoHost command is running right now, "
        "we are waiting for it to finish before running this one"
    ),
    "warn_the_user_about_waiting_lock_again": "Still waiting...",
    "warn_the_user_that_lock_is_acquired": (
        "The other command just completed, now starting this command"
    ),
    "invalid_argument": "Invalid argument '{argument}': {error}",
    "invalid_usage": "Invalid usage, pass --help to see help",
    "operation_interrupted": "Operation interrupted",
    "not_a_tty": "Not a tty, can't do interactive prompts",
    # YUNOHOST.md §1.9: the locale text still says 30 characters although the pattern allows 50
    "pattern_backup_archive_name": (
        "Must be a valid filename with max 30 characters, alphanumeric and -_. characters only"
    ),
    "pattern_port_or_range": "Must be a valid port number (i.e. 0-65535) or range of ports (e.g. 100:200)",
    # backup create - YUNOHOST.md §1.3, §2.1, §2.2
    "app_start_backup": "Collecting files to be backed up for {app}…",
    "backup_actually_backuping": "Creating a backup archive from the collected files…",
    "backup_create_size_estimation": "The archive will contain about {size} of data.",
    "backup_created": "Backup created: {name}",
    "backup_app_script_failed": "Failed to collect files to backed up for {app}.",
    "backup_archive_name_exists": "A backup archive with the name '{name}' already exists.",
    "backup_hook_unknown": "The backup hook '{hook}' is unknown",
    "unbackup_app": "{app} will not be saved",
    "backup_with_no_backup_script_for_app": "The app '{app}' has no backup script. Ignoring.",
    "backup_with_no_restore_script_for_app": (
        "{app} has no restoration script, you will not be able to automatically "
        "restore the backup of this app."
    ),
    "backup_system_part_failed": "Could not backup the '{part}' system part",
    "backup_no_file_collected": "Failed to collect files to be backed up",
    "backup_running_hooks": "Running backup hooks…",
    "backup_output_directory_forbidden": (
        "Pick a different output directory. Backups cannot be created in /bin, /boot, /dev, "
        "/etc, /lib, /root, /run, /sbin, /sys, /usr, /var or /home/yunohost.backup/archives "
        "sub-folders"
    ),
    "backup_output_directory_not_empty": "You should pick an empty output directory",
    "backup_output_directory_required": "You must provide an output directory for the backup",
    "backup_output_symlink_dir_broken": (
        "Your archive directory '{path}' is a broken symlink. Maybe you forgot to re/mount "
        "or plug in the storage medium it points to."
    ),
    "backup_custom_backup_error": "Custom backup method could not get past the 'backup' step",
    "not_enough_disk_space": "Not enough free space on '{path}'",
    "core_only_skip": "{path} will not be saved, because 'BACKUP_CORE_ONLY' is set.",
    # backup list / info / delete - YUNOHOST.md §1.2, §1.7, §1.11
    "backup_archive_name_unknown": "Unknown local backup archive named '{name}'",
    "backup_archive_broken_link": "Could not access the backup archive (broken link to {path})",
    "backup_archive_corrupted": (
        "It looks like the backup archive '{archive}' is corrupted : {error}"
    ),
    "backup_archive_cant_retrieve_info_json": (
        "Could not load info for archive '{archive}'… The info.json file cannot be "
        "retrieved (or is not a valid json)."
    ),
    "backup_archive_open_failed": "Could not open the backup archive",
    "backup_deleted": "Backup deleted: {name}",
    "backup_delete_error": "Could not delete '{path}'",
    # backup restore - YUNOHOST.md §1.7, §2.3
    "restore_backup_too_old": (
        "This backup archive can not be restored because it comes from a too-old YunoHost version."
    ),
    "backup_archive_system_part_not_available": "System part '{part}' unavailable in this backup",
    "backup_archive_app_not_found": "Could not find {app} in the backup archive",
    "restore_hook_unavailable": (
        "Restoration script for '{part}' not available on your system and not in the archive either"
    ),
    "restore_already_installed_app": "An app with the ID '{app}' is already installed",
    "restore_already_installed_apps": (
        "The following apps can't be restored because they are already installed: {apps}"
    ),
    "restore_not_enough_disk_space": (
        "Not enough space (space: {free_space} B, needed space: {needed_space} B, "
        "security margin: {margin} B)"
    ),
    "restore_may_be_not_enough_disk_space": (
        "Your system does not seem to have enough space (free: {free_space} B, needed "
        "space: {needed_space} B, security margin: {margin} B)"
    ),
    "yunohost_already_installed": "YunoHost is already installed",
    "yunohost_not_installed": (
        "YunoHost is not correctly installed. Please run 'yunohost tools postinstall'"
    ),
    "restore_failed": "Could not restore system",
    "backup_mount_archive_for_restore": "Preparing archive for restoration…",
    "restore_extracting": "Extracting needed files from the archive…",
    "restore_running_hooks": "Running restoration hooks…",
    "restore_system_part_failed": "Could not restore the '{part}' system part",
    "app_start_restore": "Restoring the app '{app}'…",
    "unrestore_app": "{app} will not be restored",
    "app_restore_failed": "Could not restore {app}: {error}",
    "app_restore_script_failed": "An error occured inside the app restore script",
    "restore_complete": "Restoration completed",
    "restore_nothings_done": "Nothing was restored",
    "restore_critical": "The following critical error happened during restoration: {error}",
    "postinstall_no_current_host": (
        "The main domain name cannot be retrieved from inside the archive, and is needed "
        "to perform the postinstall"
    ),
    # operation logs - YUNOHOST.md §2.1 ("Please share the full log…")
    "log_help_to_get_failed_log": (
        "The operation '{desc}' could not be completed. Please share the full log of this "
        "operation using the command 'yunohost log share {name}' to get help"
    ),
    "log_backup_create": "Create a backup archive",
    "log_backup_restore_system": "Restore system from a backup archive",
    "log_backup_restore_app": "Restore '{app}' from a backup archive",
    # misc commands
    "group_unknown": "The group '{group}' is unknown",
    "port_already_opened": "Port {port} is already opened",
    "firewall_reloaded": "Firewall reloaded",
    "app_not_installed": "Could not find {app} in the list of installed apps: {all_apps}",
}


def m18n(key: str, **kwargs: Any) -> str:
    """Return the English message for `key`, formatted with `kwargs`."""
    return MESSAGES[key].format(**kwargs)


class YunohostError(Exception):
    """An error YunoHost reports cleanly: `ERROR <message>` on stderr, exit code 1 (§2.1)."""

    def __init__(self, key: str, *, raw_msg: bool = False, **kwargs: Any) -> None:
        self.key = key
        self.message = key if raw_msg else m18n(key, **kwargs)
        super().__init__(self.message)


class YunohostValidationError(YunohostError):
    """A validation error (bad input); printed the same way as YunohostError."""
