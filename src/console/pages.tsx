import type { FC } from "hono/jsx";
import { ActionForm, CsrfField, Pager, Table, Time } from "./layout.tsx";
import type {
	ApiKey,
	AuditEvent,
	Credential,
	Delivery,
	Job,
	Provider,
	User,
	Webhook,
} from "./types.ts";

/** What a user may give a key; `admin` belongs to the admin token alone (API.md). */
const KEY_SCOPES = ["credentials:read", "credentials:write", "credentials:use", "keys:write"];

const label = (text: string) => text.replace(/_/g, " ");

export const SignInPage: FC<{ csrf: string }> = ({ csrf }) => (
	<form method="post" action="/console/sign-in" class="stack">
		<CsrfField token={csrf} />
		<div>
			<label for="key">API key</label>
			<input
				id="key"
				name="key"
				type="password"
				autocomplete="off"
				required
				aria-describedby="key-help"
				spellcheck={false}
			/>
			<p id="key-help" class="hint">
				A Latchkey key (lk_…). Administrators sign in with the admin token. The key is exchanged for
				a session; it is not kept in the browser.
			</p>
		</div>
		<div>
			<button type="submit">Sign in</button>
		</div>
	</form>
);

const connectHref = (provider: string, csrf: string, credentialId?: string) => {
	const query = new URLSearchParams({ csrf });
	if (credentialId) query.set("credential_id", credentialId);
	return `/console/connect/${encodeURIComponent(provider)}?${query}`;
};

export const IntegrationsPage: FC<{
	credentials: Credential[];
	providers: Provider[];
	csrf: string;
}> = ({ credentials, providers, csrf }) => {
	const connectable = providers.filter((p) => p.configured && p.auth_types.includes("oauth2"));
	const reconnectable = new Set(connectable.map((p) => p.id));
	const byProvider = new Map<string, Credential[]>();
	for (const credential of credentials) {
		byProvider.set(credential.provider, [
			...(byProvider.get(credential.provider) ?? []),
			credential,
		]);
	}
	const names = new Map(providers.map((p) => [p.id, p.name]));
	return (
		<>
			<section aria-labelledby="connect-heading">
				<h2 id="connect-heading">Connect an account</h2>
				{connectable.length === 0 ? (
					<p class="muted">No OAuth provider is configured yet.</p>
				) : (
					<ul class="connect">
						{connectable.map((p) => (
							<li>
								<a class="button" href={connectHref(p.id, csrf)}>
									{`Connect ${p.name}`}
								</a>
							</li>
						))}
					</ul>
				)}
			</section>
			<section aria-labelledby="credentials-heading">
				<h2 id="credentials-heading">Your credentials</h2>
				{credentials.length === 0 && <p class="muted">No credentials yet.</p>}
				{[...byProvider].map(([provider, list]) => (
					<Table
						caption={names.get(provider) ?? provider}
						columns={["Title", "Type", "Account", "Status", "Updated", "Actions"]}
					>
						{list.map((credential) => (
							<tr>
								<td>
									{credential.title ?? <span class="muted">untitled</span>}
									{credential.managed && <span class="muted"> (managed)</span>}
									{credential.system && <span class="muted"> (system)</span>}
								</td>
								<td>{label(credential.type)}</td>
								<td>{credential.username ?? credential.host ?? "—"}</td>
								<td class={`status-${credential.status}`}>{label(credential.status)}</td>
								<td>
									<Time at={credential.updated_at} />
								</td>
								<td>
									{credential.type === "oauth2" &&
										credential.status === "reconnect_required" &&
										reconnectable.has(credential.provider) && (
											<a
												class="button"
												href={connectHref(credential.provider, csrf, credential.id)}
											>
												Reconnect
											</a>
										)}
									{/* Hidden exactly where the API refuses it (403 credential_read_only). */}
									{!credential.managed && !credential.system && (
										<ActionForm
											action={`/console/credentials/${encodeURIComponent(credential.id)}/delete`}
											csrf={csrf}
											label="Delete"
											name={`Delete ${credential.title ?? credential.provider}`}
											danger
										/>
									)}
								</td>
							</tr>
						))}
					</Table>
				))}
			</section>
		</>
	);
};

/** A key shown once, with a copy button (the page's only script). */
export const ConnectedKeyPage: FC<{ created: ApiKey }> = ({ created }) => (
	<section class="notice" aria-labelledby="new-key-heading">
		<h2 id="new-key-heading">{`New key: ${created.name}`}</h2>
		<p>Copy it now: it is shown this once and cannot be read again.</p>
		<div class="secret">
			<label for="new-key" class="visually-hidden">
				The new key
			</label>
			<input id="new-key" type="text" readonly value={created.key ?? ""} class="mono" />
			<button type="button" data-copy="new-key" data-status="copy-status" hidden>
				Copy
			</button>
		</div>
		<p id="copy-status" role="status" />
	</section>
);

export const KeysPage: FC<{ keys: ApiKey[]; csrf: string }> = ({ keys, csrf }) => (
	<>
		<section aria-labelledby="create-heading">
			<h2 id="create-heading">Create a key</h2>
			<form method="post" action="/console/keys" class="stack">
				<CsrfField token={csrf} />
				<div>
					<label for="key-name">Name</label>
					<input id="key-name" name="name" type="text" required maxlength={100} />
				</div>
				<fieldset>
					<legend>Scopes (none ticked: every scope you have)</legend>
					{KEY_SCOPES.map((scope) => (
						<div class="check">
							<input
								type="checkbox"
								id={`scope-${scope.replace(":", "-")}`}
								name="scopes"
								value={scope}
							/>{" "}
							<label for={`scope-${scope.replace(":", "-")}`}>{scope}</label>
						</div>
					))}
				</fieldset>
				<div>
					<label for="key-expiry">Expires on (optional)</label>
					<input id="key-expiry" name="expires_on" type="date" />
				</div>
				<div>
					<button type="submit">Create key</button>
				</div>
			</form>
		</section>
		<section aria-labelledby="keys-heading">
			<h2 id="keys-heading">Your keys</h2>
			{keys.length === 0 ? (
				<p class="muted">No keys.</p>
			) : (
				<Table columns={["Name", "Scopes", "Created", "Expires", "Last used", "Actions"]}>
					{keys.map((key) => (
						<tr>
							<td>{key.name}</td>
							<td class="mono">{key.scopes.join(" ")}</td>
							<td>
								<Time at={key.created_at} />
							</td>
							<td>
								<Time at={key.expires_at} />
							</td>
							<td>
								<Time at={key.last_used_at} />
							</td>
							<td>
								<ActionForm
									action={`/console/keys/${encodeURIComponent(key.id)}/roll`}
									csrf={csrf}
									label="Roll"
									name={`Roll ${key.name}`}
								/>
								<ActionForm
									action={`/console/keys/${encodeURIComponent(key.id)}/revoke`}
									csrf={csrf}
									label="Revoke"
									name={`Revoke ${key.name}`}
									danger
								/>
							</td>
						</tr>
					))}
				</Table>
			)}
		</section>
	</>
);

/** A labelled input of a form. */
const Field: FC<{
	id: string;
	name: string;
	label: string;
	value?: string | undefined;
	type?: "text" | "date";
	placeholder?: string;
}> = (props) => (
	<div>
		<label for={props.id}>{props.label}</label>
		<input
			id={props.id}
			name={props.name}
			type={props.type ?? "text"}
			value={props.value ?? ""}
			placeholder={props.placeholder}
		/>
	</div>
);

export const AuditPage: FC<{
	events: AuditEvent[];
	next: string | null;
	filters: Record<string, string>;
}> = ({ events, next, filters }) => (
	<>
		<form method="get" action="/console/audit" class="stack" aria-label="Filter events">
			<Field
				id="audit-action"
				name="action"
				label="Action"
				value={filters.action}
				placeholder="lease.granted"
			/>
			<Field
				id="audit-target"
				name="target"
				label="Target"
				value={filters.target}
				placeholder="credential:cred_…"
			/>
			<Field
				id="audit-from"
				name="from"
				label="From (UTC day, inclusive)"
				type="date"
				value={filters.from}
			/>
			<Field
				id="audit-to"
				name="to"
				label="To (UTC day, inclusive)"
				type="date"
				value={filters.to}
			/>
			<div>
				<button type="submit">Filter</button>
			</div>
		</form>
		{events.length === 0 ? (
			<p class="muted">No events.</p>
		) : (
			<Table columns={["When", "Action", "Outcome", "Target", "By", "From"]}>
				{events.map((event) => (
					<tr>
						<td>
							<Time at={event.at} />
						</td>
						<td class="mono">{event.action}</td>
						<td class={`status-${event.outcome}`}>{event.outcome}</td>
						<td class="mono">{event.target ? `${event.target.type}:${event.target.id}` : "—"}</td>
						<td class="mono">
							{event.principal.method}
							{event.principal.key_id ? ` ${event.principal.key_id}` : ""}
						</td>
						<td class="mono">{event.ip ?? "—"}</td>
					</tr>
				))}
			</Table>
		)}
		<Pager next={next} base="/console/audit" params={filters} />
	</>
);

export const UsersPage: FC<{ users: User[]; next: string | null; csrf: string }> = ({
	users,
	next,
	csrf,
}) => (
	<>
		<section aria-labelledby="new-user-heading">
			<h2 id="new-user-heading">Create a user</h2>
			<form method="post" action="/console/admin/users" class="stack">
				<CsrfField token={csrf} />
				<div>
					<label for="user-email">E-mail</label>
					<input id="user-email" name="email" type="email" required maxlength={254} />
				</div>
				<div>
					<label for="user-name">Name (optional)</label>
					<input id="user-name" name="name" type="text" maxlength={200} />
				</div>
				<div>
					<button type="submit">Create user</button>
				</div>
			</form>
		</section>
		<section aria-labelledby="users-heading">
			<h2 id="users-heading">Users</h2>
			<Table columns={["E-mail", "Name", "Status", "Created", "Actions"]}>
				{users.map((user) => (
					<tr>
						<td>{user.email}</td>
						<td>{user.name ?? "—"}</td>
						<td class={`status-${user.status}`}>{user.status}</td>
						<td>
							<Time at={user.created_at} />
						</td>
						<td>
							{user.status === "active" && (
								<ActionForm
									action={`/console/admin/users/${encodeURIComponent(user.id)}/status`}
									csrf={csrf}
									label="Suspend"
									name={`Suspend ${user.email}`}
									fields={{ status: "suspended" }}
								/>
							)}
							{user.status === "suspended" && (
								<ActionForm
									action={`/console/admin/users/${encodeURIComponent(user.id)}/status`}
									csrf={csrf}
									label="Reactivate"
									name={`Reactivate ${user.email}`}
									fields={{ status: "active" }}
								/>
							)}
							{user.status !== "deleting" && (
								<ActionForm
									action={`/console/admin/users/${encodeURIComponent(user.id)}/delete`}
									csrf={csrf}
									label="Delete"
									name={`Delete ${user.email}`}
									danger
								/>
							)}
						</td>
					</tr>
				))}
			</Table>
			<Pager next={next} base="/console/admin/users" />
		</section>
	</>
);

const JOB_FILTERS = ["failed", "pending", "running", "done", "all"];

export const JobsPage: FC<{ jobs: Job[]; next: string | null; status: string; csrf: string }> = ({
	jobs,
	next,
	status,
	csrf,
}) => (
	<>
		<nav aria-label="Job status">
			<ul class="filters">
				{JOB_FILTERS.map((s) => (
					<li>
						<a
							href={`/console/admin/jobs?status=${s}`}
							aria-current={s === status ? "true" : undefined}
						>
							{s}
						</a>
					</li>
				))}
			</ul>
		</nav>
		{jobs.length === 0 ? (
			<p class="muted">{`No ${status === "all" ? "" : `${status} `}jobs.`}</p>
		) : (
			<Table
				caption="Account-deletion jobs, oldest first"
				columns={["Job", "User", "Status", "Attempts", "Last error", "Updated", "Actions"]}
			>
				{jobs.map((job) => (
					<tr>
						<td class="mono">{job.id}</td>
						<td class="mono">{job.user_id}</td>
						<td class={`status-${job.status}`}>{job.status}</td>
						<td>{job.attempts}</td>
						<td>{job.last_error ?? "—"}</td>
						<td>
							<Time at={job.updated_at} />
						</td>
						<td>
							{job.status === "failed" && (
								<ActionForm
									action={`/console/admin/jobs/${encodeURIComponent(job.id)}/retry`}
									csrf={csrf}
									label="Retry"
									name={`Retry ${job.id}`}
								/>
							)}
						</td>
					</tr>
				))}
			</Table>
		)}
		<Pager next={next} base="/console/admin/jobs" params={{ status }} />
	</>
);

export const WebhooksPage: FC<{ webhooks: Webhook[] }> = ({ webhooks }) =>
	webhooks.length === 0 ? (
		<p class="muted">
			No webhooks. Register one with <code>PUT /v1/admin/webhooks/{"{id}"}</code>.
		</p>
	) : (
		<Table columns={["Id", "URL", "Events", "Updated"]}>
			{webhooks.map((hook) => (
				<tr>
					<td>
						<a href={`/console/admin/webhooks/${encodeURIComponent(hook.id)}`}>{hook.id}</a>
					</td>
					<td class="mono">{hook.url}</td>
					<td class="mono">{hook.events.join(", ")}</td>
					<td>
						<Time at={hook.updated_at} />
					</td>
				</tr>
			))}
		</Table>
	);

export const WebhookPage: FC<{
	webhook: Webhook;
	deliveries: Delivery[];
	next: string | null;
	csrf: string;
}> = ({ webhook, deliveries, next, csrf }) => (
	<>
		<p>
			<span class="mono">{webhook.url}</span> receives{" "}
			<span class="mono">{webhook.events.join(", ")}</span>.
		</p>
		<h2>Deliveries</h2>
		{deliveries.length === 0 ? (
			<p class="muted">No deliveries yet.</p>
		) : (
			<Table
				caption="Oldest first; failed deliveries are the dead letter"
				columns={[
					"Delivery",
					"Event",
					"Status",
					"Attempts",
					"Last answer",
					"Next attempt",
					"Actions",
				]}
			>
				{deliveries.map((d) => (
					<tr>
						<td class="mono">{d.id}</td>
						<td class="mono">{d.event_type}</td>
						<td class={`status-${d.status}`}>{d.status}</td>
						<td>{`${d.attempts} of ${d.max_attempts}`}</td>
						<td>{d.last_status ?? d.last_error ?? "—"}</td>
						<td>{d.status === "pending" ? <Time at={d.next_attempt_at} /> : "—"}</td>
						<td>
							{d.status !== "pending" && (
								<ActionForm
									action={`/console/admin/webhooks/${encodeURIComponent(webhook.id)}/deliveries/${encodeURIComponent(d.id)}/redeliver`}
									csrf={csrf}
									label="Redeliver"
									name={`Redeliver ${d.id}`}
								/>
							)}
						</td>
					</tr>
				))}
			</Table>
		)}
		<Pager next={next} base={`/console/admin/webhooks/${encodeURIComponent(webhook.id)}`} />
	</>
);
