/**
 * The console's only stylesheet and script, served from the worker itself so the pages' CSP can
 * say `script-src 'self'; style-src 'self'` and nothing else. The pages work without the script;
 * it adds the copy button next to a key shown once.
 */
export const ASSET_PATHS = {
	css: "/console/assets/console.css",
	js: "/console/assets/console.js",
	icon: "/console/assets/icon.svg",
} as const;

export const CONSOLE_CSS = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #fff; --muted: #57606a; --line: #d0d7de;
  --accent: #0b5cad; --danger: #b42318; --ok-bg: #e6f4ea; --err-bg: #fdecea; --focus: #ffbf47; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9da7b3;
  --line: #30363d; --accent: #58a6ff; --danger: #ff7b72; --ok-bg: #12261e; --err-bg: #2d1214; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--bg); padding: .5rem 1rem; }
.skip:focus { left: 0; }
.top { display: flex; flex-wrap: wrap; align-items: center; gap: 1.5rem; padding: .75rem 1.5rem; border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; letter-spacing: .02em; }
.top nav ul { display: flex; gap: 1rem; list-style: none; margin: 0; padding: 0; }
.top nav a[aria-current="page"] { font-weight: 700; text-decoration-thickness: 3px; }
.sign-out { margin-left: auto; }
main { max-width: 72rem; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .75rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
caption { text-align: left; color: var(--muted); padding-bottom: .25rem; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .9em; }
form.inline { display: inline; margin-right: .4rem; }
form.stack { display: grid; gap: .75rem; max-width: 32rem; margin: .5rem 0 1.5rem; }
fieldset { border: 1px solid var(--line); padding: .5rem 1rem; }
label { font-weight: 600; }
input[type=text], input[type=email], input[type=password], input[type=date], input[type=url], select {
  width: 100%; padding: .45rem .55rem; font: inherit; color: inherit; background: var(--bg); border: 1px solid var(--muted); border-radius: 4px; }
.check label { font-weight: 400; }
button, .button { font: inherit; padding: .35rem .8rem; border-radius: 4px; border: 1px solid var(--accent);
  background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
button.link { background: none; border: none; color: var(--accent); text-decoration: underline; padding: 0; }
button.danger { background: var(--bg); color: var(--danger); border-color: var(--danger); }
.notice { background: var(--ok-bg); padding: .6rem .9rem; border-radius: 4px; }
.error { background: var(--err-bg); padding: .6rem .9rem; border-radius: 4px; }
.error p { margin: .2rem 0; }
.hint, .muted { color: var(--muted); }
.status-active { color: inherit; }
.status-reconnect_required, .status-suspended, .status-failed, .status-revoked { color: var(--danger); font-weight: 600; }
.secret { display: flex; gap: .5rem; align-items: center; max-width: 48rem; }
.secret input { flex: 1; }
.pager { margin-top: 1rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
ul.connect, ul.filters { display: flex; flex-wrap: wrap; gap: .75rem; list-style: none; padding: 0; }
ul.filters a[aria-current] { font-weight: 700; }
`;

/** Progressive enhancement only: a copy button for the element its data-copy attribute names. */
export const CONSOLE_JS = `
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("button[data-copy]");
  if (!button) return;
  var field = document.getElementById(button.getAttribute("data-copy"));
  if (!field || !navigator.clipboard) return;
  navigator.clipboard.writeText(field.value).then(function () {
    button.textContent = "Copied";
    var status = document.getElementById(button.getAttribute("data-status"));
    if (status) status.textContent = "Copied to the clipboard.";
  });
});
document.querySelectorAll("button[data-copy]").forEach(function (button) { button.hidden = false; });
`;

/** A key, drawn; served so the browser's favicon request is not a 404 on every page. */
export const CONSOLE_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="10" cy="16" r="7" fill="none" stroke="#0b5cad" stroke-width="4"/><path d="M17 16h13M25 16v6M29 16v4" stroke="#0b5cad" stroke-width="4" fill="none"/></svg>`;
