import type { Child, FC } from "hono/jsx";
import { ASSET_PATHS } from "./assets.ts";

/**
 * Every page's frame. Hono JSX escapes every string it interpolates, so user-controlled text
 * (titles, names, e-mail addresses, error messages) reaches the page as text, never as markup;
 * nothing here uses raw HTML.
 */
export type NavKind = "user" | "admin" | "none";

export interface LayoutProps {
	title: string;
	nav: NavKind;
	/** The current page's path, marked aria-current in the navigation. */
	active?: string;
	csrf?: string;
	notice?: string | null;
	error?: { message: string; hint?: string } | null;
	children?: Child;
}

const NAV: Record<Exclude<NavKind, "none">, { href: string; label: string }[]> = {
	user: [
		{ href: "/console/integrations", label: "Integrations" },
		{ href: "/console/keys", label: "API keys" },
		{ href: "/console/audit", label: "Audit trail" },
	],
	admin: [
		{ href: "/console/admin/users", label: "Users" },
		{ href: "/console/admin/jobs", label: "Jobs" },
		{ href: "/console/admin/webhooks", label: "Webhooks" },
		{ href: "/console/audit", label: "Audit log" },
	],
};

export const Layout: FC<LayoutProps> = (props) => (
	<html lang="en">
		<head>
			<meta charset="utf-8" />
			<meta name="viewport" content="width=device-width, initial-scale=1" />
			<title>{`${props.title} · Latchkey`}</title>
			<link rel="icon" href={ASSET_PATHS.icon} type="image/svg+xml" />
			<link rel="stylesheet" href={ASSET_PATHS.css} />
			<script src={ASSET_PATHS.js} defer />
		</head>
		<body>
			<a class="skip" href="#main">
				Skip to content
			</a>
			<header class="top">
				<span class="brand">Latchkey</span>
				{props.nav !== "none" && (
					<nav aria-label="Console">
						<ul>
							{NAV[props.nav].map((item) => (
								<li>
									<a
										href={item.href}
										aria-current={props.active === item.href ? "page" : undefined}
									>
										{item.label}
									</a>
								</li>
							))}
						</ul>
					</nav>
				)}
				{props.nav !== "none" && props.csrf && (
					<form method="post" action="/console/sign-out" class="sign-out">
						<CsrfField token={props.csrf} />
						<button type="submit" class="link">
							Sign out
						</button>
					</form>
				)}
			</header>
			<main id="main" tabindex={-1}>
				<h1>{props.title}</h1>
				{props.notice && (
					<p class="notice" role="status">
						{props.notice}
					</p>
				)}
				{props.error && (
					<div class="error" role="alert">
						<p>{props.error.message}</p>
						{props.error.hint && <p class="hint">{props.error.hint}</p>}
					</div>
				)}
				{props.children}
			</main>
		</body>
	</html>
);

export const CsrfField: FC<{ token: string }> = ({ token }) => (
	<input type="hidden" name="_csrf" value={token} />
);

/** A one-button form: every state change is a POST carrying the CSRF token. */
export const ActionForm: FC<{
	action: string;
	csrf: string;
	label: string;
	/** The button's accessible name when the visible label alone is ambiguous in a table row. */
	name?: string;
	danger?: boolean;
	fields?: Record<string, string>;
}> = (props) => (
	<form method="post" action={props.action} class="inline">
		<CsrfField token={props.csrf} />
		{Object.entries(props.fields ?? {}).map(([name, value]) => (
			<input type="hidden" name={name} value={value} />
		))}
		<button type="submit" class={props.danger ? "danger" : undefined} aria-label={props.name}>
			{props.label}
		</button>
	</form>
);

export const Time: FC<{ at: string | null | undefined }> = ({ at }) =>
	at ? <time datetime={at}>{at.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC")}</time> : <>—</>;

export const Pager: FC<{ next: string | null; base: string; params?: Record<string, string> }> = (
	props,
) => {
	if (!props.next) return null;
	const query = new URLSearchParams({ ...(props.params ?? {}), cursor: props.next });
	return (
		<p class="pager">
			<a href={`${props.base}?${query}`}>Next page</a>
		</p>
	);
};

/** A table of rows with a header per column; every page's lists use it. */
export const Table: FC<{ caption?: Child; columns: string[]; children?: Child }> = (props) => (
	<table>
		{props.caption && <caption>{props.caption}</caption>}
		<thead>
			<tr>
				{props.columns.map((column) => (
					<th scope="col">{column}</th>
				))}
			</tr>
		</thead>
		<tbody>{props.children}</tbody>
	</table>
);
