#!/usr/bin/env bash
# Dashboard translations (doc/dashboard.md): extract the English texts of the templates and the
# web package, merge them into every language's .po file, compile the .mo files (committed, so
# a fresh clone needs no build step). Run after changing texts; then translate the new entries
# of sources/backupmanager/translations/<lang>/LC_MESSAGES/messages.po and run it again.
set -euo pipefail
cd "$(dirname "$0")/../sources/backupmanager"
pybabel=../../.venv/bin/pybabel
catalog=translations/messages.pot
# N_ marks the messages of runs and restores the dashboard translates (web/known_messages.py).
"$pybabel" extract -F translations/babel.cfg -k _l -k lazy_gettext -k N_ --no-location \
  --project BackupManager --omit-header -o "$catalog" web templates errors.py databases/errors.py \
  jobs/db_dump.py drill.py restore/database.py restore/refusals.py
for lang in fr; do
  po="translations/$lang/LC_MESSAGES/messages.po"
  if [ -f "$po" ]; then
    "$pybabel" update --no-fuzzy-matching -i "$catalog" -d translations -l "$lang"
  else
    "$pybabel" init -i "$catalog" -d translations -l "$lang"
  fi
done
"$pybabel" compile -d translations --statistics
