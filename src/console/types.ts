/**
 * The API's answers as the console reads them: only the fields a page shows. The API's own
 * schemas (src/*\/routes.ts) are the contract; these are the console's view of it.
 */
export interface List<T> {
	data: T[];
	next_cursor: string | null;
}

export interface TokenPair {
	access_token: string;
	refresh_token: string;
	expires_in: number;
	refresh_expires_in: number;
	scope: string;
}

export interface Credential {
	id: string;
	provider: string;
	type: "oauth2" | "api_key" | "user_password" | "host_scoped";
	title: string | null;
	scopes: string[];
	username: string | null;
	host: string | null;
	status: "active" | "reconnect_required" | "revoked";
	managed: boolean;
	system: boolean;
	access_token_expires_at: string | null;
	updated_at: string;
	last_used_at: string | null;
}

export interface Provider {
	id: string;
	name: string;
	auth_types: string[];
	configured: boolean;
	managed: boolean;
}

export interface ApiKey {
	id: string;
	name: string;
	scopes: string[];
	created_at: string;
	expires_at: string | null;
	last_used_at: string | null;
	/** Only in the answer that created (or rolled) the key. */
	key?: string;
}

export interface AuditEvent {
	id: string;
	at: string;
	action: string;
	outcome: string;
	principal: {
		method: string;
		user_id: string | null;
		key_id: string | null;
		session_id: string | null;
	};
	target: { type: string; id: string } | null;
	ip: string | null;
	request_id: string | null;
}

export interface User {
	id: string;
	email: string;
	name: string | null;
	status: "active" | "suspended" | "deleting";
	created_at: string;
}

export interface Job {
	id: string;
	user_id: string;
	kind: string;
	status: string;
	attempts: number;
	next_attempt_at: string | null;
	last_error: string | null;
	updated_at: string;
}

export interface Webhook {
	id: string;
	url: string;
	events: string[];
	created_at: string;
	updated_at: string;
}

export interface Delivery {
	id: string;
	event_type: string;
	status: "pending" | "delivered" | "failed";
	attempts: number;
	max_attempts: number;
	next_attempt_at: string;
	last_status: number | null;
	last_error: string | null;
	delivered_at: string | null;
	created_at: string;
}
