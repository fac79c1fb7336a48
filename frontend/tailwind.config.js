// Tailwind scans the templates (and the SVG chart's Python) for the classes the dashboard uses.
module.exports = {
  content: [
    "../sources/backupmanager/templates/**/*.html",
    "../sources/backupmanager/web/**/*.py",
  ],
  theme: { extend: {} },
  plugins: [],
};
