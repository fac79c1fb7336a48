#!/bin/bash
# Stand-ins for the few YunoHost helpers (2.1) that our scripts/_common.sh calls, so the
# package's own functions can run in tests. Behaviour from YUNOHOST.md §3.2; tests only.

ynh_safe_rm() {
    [ -n "${1:-}" ] && [ "$1" != "/" ] && rm -rf -- "$1"
}

ynh_app_setting_get() {
    local key="${1#--key=}"
    local file="$YNH_SIM_SETTINGS"
    [ -f "$file" ] || return 0
    sed -n "s/^${key}: //p" "$file"
}

ynh_app_setting_set() {
    local key="${1#--key=}" value="${2#--value=}"
    touch "$YNH_SIM_SETTINGS"
    sed -i "/^${key}: /d" "$YNH_SIM_SETTINGS"
    echo "${key}: ${value}" >>"$YNH_SIM_SETTINGS"
}

# ynh_config_add --template=NAME --destination=PATH: conf/NAME with every __FOO__ replaced by
# the value of $foo when that variable is set.
ynh_config_add() {
    local template="${1#--template=}" destination="${2#--destination=}"
    local content var name
    content="$(cat "$YNH_APP_BASEDIR/conf/$template")"
    for var in $(grep -o '__[A-Z0-9_]*__' "$YNH_APP_BASEDIR/conf/$template" | sort -u); do
        name="${var#__}"
        name="${name%__}"
        name="${name,,}"
        if [ -n "${!name+x}" ]; then
            content="${content//"$var"/${!name}}"
        fi
    done
    printf '%s\n' "$content" >"$destination"
}

# Runs the command as the app's system user, like the real helper (sudo -u $app).
ynh_exec_as_app() {
    setpriv --reuid="$app" --regid="$app" --init-groups -- "$@"
}
