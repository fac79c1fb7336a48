# Minimal stand-in for /usr/share/yunohost/helpers, loaded as BASH_ENV into every hook the
# yunohost simulator runs (system backup/restore hooks use helpers v1 by default,
# YUNOHOST.md §1.8). Only what system hooks commonly need is provided:
#   ynh_backup SRC [DEST] [IS_BIG]  (or --src_path= --dest_path= --is_big= --not_mandatory)
#   ynh_restore_file ORIGIN [DEST]  (or --origin_path= --dest_path= --not_mandatory)
#   ynh_print_info / ynh_print_warn / ynh_die
# `source /usr/share/yunohost/helpers` (absent on this machine) is turned into a no-op.

source() {
    if [ "${1:-}" = "/usr/share/yunohost/helpers" ]; then return 0; fi
    builtin source "$@"
}
.() { source "$@"; }

ynh_print_info() {
    local message="${1#--message=}"
    echo "$message" >> "${YNH_SIM_STDINFO:-/dev/stderr}"
}

ynh_print_warn() { echo "${1#--message=}" >&2; }

ynh_die() {
    echo "${1#--message=}" >&2
    exit "${2:-1}"
}

# Split "--key=value" / positional arguments into the variables named in $1 (in order)
_ynh_sim_args() {
    local names=($1) index=0 arg
    shift
    for arg in "$@"; do
        case "$arg" in
            --*=*) local key="${arg%%=*}"; key="${key#--}"; printf -v "$key" '%s' "${arg#*=}" ;;
            --*) printf -v "${arg#--}" '%s' 1 ;;
            *) printf -v "${names[$index]}" '%s' "$arg"; index=$((index + 1)) ;;
        esac
    done
}

# Declare SRC to be backed up as DEST (relative to the work dir) in $YNH_BACKUP_CSV.
# Helpers v1: an item with is_big=1 is skipped when BACKUP_CORE_ONLY is 1 (§2.5).
ynh_backup() {
    local src_path="" dest_path="" is_big=0 not_mandatory=0
    _ynh_sim_args "src_path dest_path is_big" "$@"
    BACKUP_CORE_ONLY=${BACKUP_CORE_ONLY:-0}
    if [ "$is_big" -eq 1 ] && [ "$BACKUP_CORE_ONLY" -eq 1 ]; then
        ynh_print_info "$src_path will not be saved, because 'BACKUP_CORE_ONLY' is set."
        return 0
    fi
    if [ ! -e "$src_path" ]; then
        ynh_print_warn "Source path '${src_path}' does not exist"
        [ "$not_mandatory" = "1" ] && return 0
        return 1
    fi
    src_path=$(realpath "$src_path")
    if [ -z "$dest_path" ]; then
        dest_path="${src_path#/}"
    else
        if [ "${dest_path:0:1}" = "/" ]; then
            dest_path="${dest_path#"$YNH_CWD"/}"
            dest_path="${dest_path#/}"
        fi
        if [ "${dest_path: -1}" = "/" ]; then
            dest_path="${dest_path}$(basename "$src_path")"
        fi
    fi
    local rel_cwd="${YNH_CWD#"$YNH_BACKUP_DIR"}"
    rel_cwd="${rel_cwd#/}"
    if [ -n "$rel_cwd" ]; then dest_path="$rel_cwd/$dest_path"; fi
    printf '"%s","%s"\n' "${src_path//\"/\"\"}" "${dest_path//\"/\"\"}" >> "$YNH_BACKUP_CSV"
}

# Copy ORIGIN back from the restore work dir: $YNH_CWD$ORIGIN, else the dest that
# backup.csv gives for it.
ynh_restore_file() {
    local origin_path="" dest_path="" not_mandatory=0
    _ynh_sim_args "origin_path dest_path not_mandatory" "$@"
    origin_path="/${origin_path#/}"
    dest_path="${dest_path:-$origin_path}"
    local archive_path="$YNH_CWD$origin_path"
    if [ ! -e "$archive_path" ]; then
        local line
        line=$(grep -F "\"$origin_path\"," "$YNH_BACKUP_CSV" 2>/dev/null | head -n1 | tr -d '\r')
        if [ -z "$line" ]; then
            [ "$not_mandatory" = "1" ] && return 0
            ynh_die "Original path '$origin_path' not found in the backup"
        fi
        line="${line#*\",\"}"
        archive_path="$YNH_BACKUP_DIR/${line%\"}"
    fi
    mkdir -p "$(dirname "$dest_path")"
    rm -rf "$dest_path"
    cp -a "$archive_path" "$dest_path"
}
