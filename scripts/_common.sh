#!/bin/bash

#=================================================
# COMMON VARIABLES AND CUSTOM HELPERS
#=================================================

# The Python project ships inside the package (sources/); pinned dependencies come from its lock.
venv_dir="$install_dir/venv"
worker_service="$app-worker"

# Build (or rebuild) the virtualenv from the lock file, then install BackupManager itself.
_backupmanager_build_venv() {
    ynh_safe_rm "$venv_dir"
    ynh_safe_rm "$install_dir/sources"
    mkdir -p "$install_dir/sources"
    cp -r "$YNH_APP_BASEDIR/sources/backupmanager" "$YNH_APP_BASEDIR/sources/pyproject.toml" \
        "$YNH_APP_BASEDIR/sources/requirements.lock" "$install_dir/sources/"
    python3 -m venv "$venv_dir"
    "$venv_dir/bin/python3" -m pip install --quiet --upgrade pip
    "$venv_dir/bin/python3" -m pip install --quiet --requirement "$install_dir/sources/requirements.lock"
    "$venv_dir/bin/python3" -m pip install --quiet --no-deps "$install_dir/sources"
}

# Render the configuration: root owns it (it holds the hook switch), the app user may read it.
_backupmanager_render_config() {
    hook_commands=$(ynh_app_setting_get --key=hook_commands)
    hook_commands=${hook_commands:-false}
    instance_url="https://$domain${path%/}"
    ynh_config_add --template="config.toml" --destination="$install_dir/config.toml"
    chown "root:$app" "$install_dir/config.toml"
    chmod 640 "$install_dir/config.toml"
}

# Run a backupmanager command as the app user (the database belongs to it).
_backupmanager_as_app() {
    ynh_exec_as_app env BACKUPMANAGER_CONFIG="$install_dir/config.toml" "$venv_dir/bin/backupmanager" "$@"
}

# The first API token: stored only as a bcrypt hash; its only clear copy goes to a root-only file
# that POST_INSTALL.md tells the admin to read, then delete (an install log can be shared).
_backupmanager_first_token() {
    local token_file="$data_dir/api-token-created-at-install.txt"
    _backupmanager_as_app tokens create install --json >"$token_file"
    chown root:root "$token_file"
    chmod 600 "$token_file"
}

_backupmanager_permissions() {
    chown -R "root:$app" "$install_dir"
    chmod -R o-rwx "$install_dir"
    chown -R "$app:$app" "$data_dir"
    chmod 750 "$data_dir"
    mkdir -p "/var/log/$app"
    chown -R "$app:$app" "/var/log/$app"
    chmod 750 "/var/log/$app"
}
