#!/usr/bin/env bash
# Rebuild the dashboard's front-end assets (doc/dashboard.md): Tailwind CSS compiled from the
# templates, htmx vendored. Needs Node.js and npm (from the npm registry, pinned by
# frontend/package-lock.json); the outputs in sources/backupmanager/static/ are committed, so
# installing, testing and CI never need Node.js. Run it after changing classes in templates.
set -euo pipefail
cd "$(dirname "$0")/../frontend"
npm ci --no-audit --no-fund --loglevel=error
static=../sources/backupmanager/static
npx --no-install tailwindcss --config tailwind.config.js --input app.css --output "$static/app.css" --minify
cp node_modules/htmx.org/dist/htmx.min.js "$static/htmx.min.js"
cp app.js "$static/app.js"
echo "build-assets: wrote $static/app.css, htmx.min.js, app.js"
