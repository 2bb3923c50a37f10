/**
 * The types of Latchkey's HTTP API, generated from the OpenAPI document the app serves at
 * /openapi.json by `npm run client:generate` (scripts/generate-client.ts, openapi-typescript).
 * Do not edit: test/node/client-openapi.test.ts fails when this file differs from what the
 * generator writes for the current routes.
 */
export interface paths {
	"/health": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** Liveness (no dependency checks) */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The worker is up */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": {
							/** @enum {string} */
							status: "ok";
						};
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/health/ready": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** Readiness: one Postgres query and one Redis command, for real */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description Both dependencies answer */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Readiness"];
					};
				};
				/** @description Internal error or misconfigured deployment */
				500: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Dependency unavailable (see Retry-After) */
				503: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/auth/token": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/** Exchange an API key, or rotate a refresh token, for an access token */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody: {
				content: {
					"application/json": components["schemas"]["TokenRequest"];
				};
			};
			responses: {
				/** @description A token pair. Exchanging a legacy (sk-…) key adds `Deprecation: @<unix seconds of its import>` and, when LEGACY_KEYS_SUNSET is set, `Sunset: <HTTP-date>`. */
				200: {
					headers: {
						Deprecation?: string;
						Sunset?: string;
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["TokenResponse"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Rate limited (see Retry-After) */
				429: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/auth/revoke": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/** Revoke the session of a refresh token (no bearer needed) */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody: {
				content: {
					"application/json": {
						refresh_token: string;
					};
				};
			};
			responses: {
				/** @description Revoked (also when the token was unknown, per RFC 7009) */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": {
							revoked: boolean;
						};
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/.well-known/jwks.json": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** Public keys of every accepted access-token signing key */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description JWK set */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["JWKS"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/whoami": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** The authenticated principal (no I/O beyond authentication) */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The caller */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Principal"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Rate limited (see Retry-After) */
				429: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/api-keys": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** List your active API keys (never the keys themselves) */
		get: {
			parameters: {
				query?: {
					/** @description Page size, 1–100. */
					limit?: number;
					/** @description The `next_cursor` of the previous page; omit for the first page. */
					cursor?: string;
				};
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description Keys */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["ApiKeyList"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		/** Create an API key for yourself */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody: {
				content: {
					"application/json": components["schemas"]["CreateApiKey"];
				};
			};
			responses: {
				/** @description The new key (shown once) */
				201: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["NewApiKey"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/api-keys/{id}": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		post?: never;
		/** Revoke an API key and every session obtained from it, effective at once */
		delete: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description Revoked */
				204: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/api-keys/{id}/roll": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/** Replace a key; the old one keeps working for grace_seconds */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: {
				content: {
					"application/json": {
						grace_seconds?: number;
					};
				};
			};
			responses: {
				/** @description The new key (shown once) */
				201: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["NewApiKey"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/users/{user_id}/api-keys": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/** Issue an API key for a user */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					user_id: string;
				};
				cookie?: never;
			};
			requestBody: {
				content: {
					"application/json": components["schemas"]["CreateApiKey"];
				};
			};
			responses: {
				/** @description The new key (shown once) */
				201: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["NewApiKey"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/users/{user_id}/api-keys/import": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/** Import a legacy (sk-…) key for a user; stored hashed */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					user_id: string;
				};
				cookie?: never;
			};
			requestBody: {
				content: {
					"application/json": {
						key: string;
						name: string;
					};
				};
			};
			responses: {
				/** @description Imported */
				201: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["ApiKey"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/me": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** The authenticated user */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The user */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["User"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		/**
		 * Delete the authenticated user's account
		 * @description Every key and session stops working at once; managed credentials are deprovisioned and the data purged by the scheduled worker.
		 */
		delete: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description Deletion under way */
				202: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["DeletionAccepted"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		options?: never;
		head?: never;
		/**
		 * Update the authenticated user's profile
		 * @description Only the fields sent change; an empty object changes nothing.
		 */
		patch: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: {
				content: {
					"application/json": components["schemas"]["ProfileUpdate"];
				};
			};
			responses: {
				/** @description The updated user */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["User"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Body over 64 KiB */
				413: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		trace?: never;
	};
	"/v1/admin/users": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** List users, oldest first */
		get: {
			parameters: {
				query?: {
					/** @description Page size, 1–100. */
					limit?: number;
					/** @description The `next_cursor` of the previous page; omit for the first page. */
					cursor?: string;
					/** @description Only users with this status */
					status?: "active" | "suspended" | "deleting";
				};
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page of users */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["UserList"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		/** Create a user */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody: {
				content: {
					"application/json": components["schemas"]["UserCreate"];
				};
			};
			responses: {
				/** @description The new user */
				201: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["User"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Body over 64 KiB */
				413: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/users/{id}": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * Get a user
		 * @description Users whose deletion is under way read `status: "deleting"` until they are purged.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The user */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["User"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		/**
		 * Delete a user
		 * @description As DELETE /v1/me, for any user. Repeating it changes nothing.
		 */
		delete: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description Deletion under way */
				202: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["DeletionAccepted"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		options?: never;
		head?: never;
		/**
		 * Suspend, reactivate or rename a user
		 * @description A user whose deletion is under way cannot be changed (409 conflict).
		 */
		patch: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: {
				content: {
					"application/json": components["schemas"]["AdminUserUpdate"];
				};
			};
			responses: {
				/** @description The updated user */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["User"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Body over 64 KiB */
				413: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		trace?: never;
	};
	"/v1/unsubscribe": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * Turn off notification e-mails (link from an e-mail)
		 * @description No authentication: the signed token is the authorisation. Browsers (Accept preferring text/html) get a short page, other clients JSON.
		 */
		get: {
			parameters: {
				query: {
					/** @description The signed token from the e-mail link */
					token: string;
				};
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description Notification e-mails are off */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Unsubscribed"];
						"text/html": string;
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/credentials": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * List your own, managed and system credentials
		 * @description Also provisions the managed credentials the user lacks (one per available managed provider), waiting at most 2 s for them; a provisioning failure never fails the listing, and what is not done by then finishes in the background.
		 */
		get: {
			parameters: {
				query?: {
					/** @description Page size, 1–100. */
					limit?: number;
					/** @description The `next_cursor` of the previous page; omit for the first page. */
					cursor?: string;
					provider?: string;
				};
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description Credentials */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["CredentialList"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		/** Store a credential (secret fields by type); the response carries metadata only */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody: {
				content: {
					"application/json": components["schemas"]["CreateCredential"];
				};
			};
			responses: {
				/** @description Stored */
				201: {
					headers: {
						/** @description The credential's `version`, quoted: send it back in `If-Match`. */
						ETag?: string;
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Credential"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Body over 64 KiB */
				413: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/credentials/{id}": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** A credential's metadata */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The credential */
				200: {
					headers: {
						/** @description The credential's `version`, quoted: send it back in `If-Match`. */
						ETag?: string;
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Credential"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		/** Delete a credential, revoking an OAuth2 token upstream (RFC 7009) where possible */
		delete: {
			parameters: {
				query?: never;
				header?: {
					/** @description The credential's ETag (`"<version>"`), or several comma-separated, or `*`. A stale value → 412 `precondition_failed` and nothing changes; without it the last writer wins. */
					"if-match"?: string;
				};
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description `revoked`: the upstream revocation result, null where the provider has no revocation endpoint */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["CredentialDeleted"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Precondition failed (a stale `If-Match`) */
				412: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		options?: never;
		head?: never;
		/** Change title, metadata or the secret fields of the credential's type */
		patch: {
			parameters: {
				query?: never;
				header?: {
					/** @description The credential's ETag (`"<version>"`), or several comma-separated, or `*`. A stale value → 412 `precondition_failed` and nothing changes; without it the last writer wins. */
					"if-match"?: string;
				};
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody: {
				content: {
					"application/json": components["schemas"]["UpdateCredential"];
				};
			};
			responses: {
				/** @description Updated */
				200: {
					headers: {
						/** @description The credential's `version`, quoted: send it back in `If-Match`. */
						ETag?: string;
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Credential"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Precondition failed (a stale `If-Match`) */
				412: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		trace?: never;
	};
	"/v1/admin/system-credentials": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/** Configure a system credential, shown read-only to every user */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody: {
				content: {
					"application/json": components["schemas"]["CreateCredential"];
				};
			};
			responses: {
				/** @description Stored */
				201: {
					headers: {
						/** @description The credential's `version`, quoted: send it back in `If-Match`. */
						ETag?: string;
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Credential"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/credentials/{id}/leases": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * Lease a credential's secret for an agent run (refreshing an OAuth token first if needed)
		 * @description The only way a secret leaves Latchkey. An OAuth2 token is refreshed first when it expires before the lease's end plus min(5 minutes, a quarter of its lifetime); however many leases ask at once, one refresh reaches the provider. A token too short-lived to cover the TTL is leased with `expires_at` cut to its expiry. For providers whose refresh invalidates the previous access token, only the token's own margin starts a refresh (never the TTL a caller asks for), and leases end where that margin begins, so the refresh waits for no lease; should one still hold the token, the refresh waits for it and new leases queue behind it (503 `refresh_pending` with Retry-After if that takes longer than about 25 s). 429 `rate_limited` with Retry-After when the caller's key has used its lease rate (default: 500 at once, then 50 a second) or the credential has as many live leases as it may (default 1000).
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: {
				content: {
					"application/json": {
						/**
						 * @description Seconds, 1–900; default 60.
						 * @default 60
						 */
						ttl_seconds?: number;
					};
				};
			};
			responses: {
				/** @description Leased */
				201: {
					headers: {
						/** @description A lease carries a secret. */
						"Cache-Control": "no-store";
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Lease"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Rate limited (see Retry-After) */
				429: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Upstream provider unavailable */
				502: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Dependency unavailable (see Retry-After) */
				503: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/leases/{lease_id}/renew": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * Extend a lease
		 * @description Sets the lease's end to now + `ttl_seconds`. Without `ttl_seconds` (no body, or none in it) the end becomes now + 60 s or stays where it is, whichever is later: a renewal never shortens a lease unless `ttl_seconds` asks for it. 409 `token_expiring` when the leased token cannot cover the renewal (for providers whose refresh invalidates the previous token, leases end where its refresh margin begins) or a refresh is waiting for it: release and lease again. 410 `lease_gone` after expiry, release or the credential's deletion (the lease's record is kept 5 minutes past its end; after that, 404).
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					lease_id: string;
				};
				cookie?: never;
			};
			requestBody?: {
				content: {
					"application/json": {
						/** @description Seconds, 1–900. Absent: now + 60 s or the current end, whichever is later. */
						ttl_seconds?: number;
					};
				};
			};
			responses: {
				/** @description Renewed */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["LeaseRenewed"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Gone */
				410: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Dependency unavailable (see Retry-After) */
				503: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/leases/{lease_id}": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		post?: never;
		/** Release a lease */
		delete: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					lease_id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description Released */
				204: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Gone */
				410: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Dependency unavailable (see Retry-After) */
				503: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/providers": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** Providers users can connect */
		get: {
			parameters: {
				query?: {
					/** @description Page size, 1–100. */
					limit?: number;
					/** @description The `next_cursor` of the previous page; omit for the first page. */
					cursor?: string;
				};
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description Providers */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["ProviderList"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Rate limited (see Retry-After) */
				429: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/providers/{id}": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		/** Register or replace an OAuth2 or API-key-only provider, or set a built-in provider's client */
		put: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody: {
				content: {
					"application/json": components["schemas"]["ProviderPut"];
				};
			};
			responses: {
				/** @description The provider (without its client secret) */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["ProviderConfig"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/oauth/{provider}/authorize": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/** Start connecting an account: get the URL to send the user to */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					provider: string;
				};
				cookie?: never;
			};
			requestBody?: {
				content: {
					"application/json": components["schemas"]["AuthorizeRequest"];
				};
			};
			responses: {
				/** @description The authorization URL and its state (single use, 10 minutes) */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Authorization"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/oauth/callback": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * Where the provider sends the user back (no authentication: the state names the user)
		 * @description Exchanges the code and **parks** the provider's answer (sealed, single use, 10 minutes): nothing is stored on the account yet, since whoever logged in at the provider may not be the user who started. Then redirects to the request's return_to with a one-time `connect_id=`, which the user who started finishes with POST /v1/oauth/connections/{connect_id}, or with `error=` (e.g. `access_denied`: nothing was parked). Without a return_to, answers a short HTML page giving the connect_id and that POST. An unknown, expired or replayed state is a 400 `invalid_state` in JSON.
		 */
		get: {
			parameters: {
				query?: {
					code?: string;
					state?: string;
					iss?: string;
					error?: string;
					error_description?: string;
				};
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description Parked (no return_to): a page giving the connect_id and how to finish. Not yet connected. */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To return_to with `connect_id=` or `error=` */
				302: {
					headers: {
						Location: string;
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description `invalid_state` (JSON), or a refused authorization (HTML, no return_to) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
						"text/html": string;
					};
				};
				/** @description The provider failed (HTML, no return_to) */
				502: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		put?: never;
		/** Complete a connection whose redirect reached the platform's own front end */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody: {
				content: {
					"application/json": components["schemas"]["OAuthCallback"];
				};
			};
			responses: {
				/** @description The stored credential */
				201: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Credential"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Upstream provider unavailable */
				502: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/oauth/connections/{connect_id}": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * Finish a browser connection: store the account parked by GET /v1/oauth/callback
		 * @description Only with a token of the user who started the connection (POST /v1/oauth/{provider}/authorize), so that a provider login made in somebody else's browser never lands on that user's account. Stores the account like the callback used to: a scope upgrade (credential_id) or a reconnect of the same provider account with a superset of scopes updates that credential in place. Single use. An unknown, expired (10 minutes after the callback) or already used connect_id is 404 `not_found`, and so is another user's, which stays usable by its owner. When the account cannot be stored, its tokens are revoked at the provider.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					/** @description The one-time id GET /v1/oauth/callback gave the browser */
					connect_id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The stored credential */
				201: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Credential"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Dependency unavailable (see Retry-After) */
				503: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/maintenance/run": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * Run the scheduled work now
		 * @description Runs what the cron runs every minute (account deletion, session sweep, proactive OAuth refresh, data-key re-wrap), each within its bounds, and answers what each did. Safe to run while the cron runs: deletion jobs are claimed, never run twice at once.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: {
				content: {
					"application/json": components["schemas"]["MaintenanceRequest"];
				};
			};
			responses: {
				/** @description What each job did */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["MaintenanceSummary"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Body over 64 KiB */
				413: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/jobs": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** List account-deletion jobs, oldest first */
		get: {
			parameters: {
				query?: {
					/** @description Page size, 1–100. */
					limit?: number;
					/** @description The `next_cursor` of the previous page; omit for the first page. */
					cursor?: string;
					/** @description Only jobs with this status */
					status?: "pending" | "running" | "done" | "failed";
					/** @description Only this user's jobs */
					user_id?: string;
				};
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page of jobs */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["JobList"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/jobs/{id}": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** Get an account-deletion job */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The job */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Job"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/jobs/{id}/retry": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * Retry a failed job
		 * @description Makes a failed job pending again, due at once, with a fresh set of attempts (LATCHKEY_JOB_MAX_ATTEMPTS); the next run (cron, or POST /v1/admin/maintenance/run) takes it. Only a failed job: any other status is 409 conflict.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The job, pending again */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Job"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/managed-providers": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** The generic HTTP provisioners (admin-configured managed providers) */
		get: {
			parameters: {
				query?: {
					/** @description Page size, 1–100. */
					limit?: number;
					/** @description The `next_cursor` of the previous page; omit for the first page. */
					cursor?: string;
				};
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description Every configured provisioner, enabled or not, by id; never a secret */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["ManagedProviderList"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/managed-providers/{id}": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** A generic HTTP provisioner (without its secret) */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The provisioner */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["ManagedProvider"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		/**
		 * Register or replace a generic HTTP provisioner of managed credentials
		 * @description Every active user gets one managed api_key credential with provider = {id}, provisioned on their next credential listing. Latchkey signs every request to the provisioner: `Latchkey-Signature: t=<unix seconds>,v2=<hex HMAC-SHA256(hmac_secret, "<t>\n<METHOD>\n<path and query>\n<Idempotency-Key>\n<raw body>")>` and `Idempotency-Key: <client_id>` (the same for every retry for one user). POST provision_url `{event:"provision",provider,client_id,user:{id,email},resources}` → 200/201 `{api_key, resources?: {name: id}, title?}`; DELETE deprovision_url `{event:"deprovision",provider,client_id,user:{id},resources}` → 2xx deleted, 404 already gone, 409 not this client_id's. URLs must be https on a public host (no private, link-local or metadata addresses; loopback http only on a local deployment): 400 invalid_request names the field otherwise. Details: docs/managed.md.
		 */
		put: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody: {
				content: {
					"application/json": components["schemas"]["ManagedProviderPut"];
				};
			};
			responses: {
				/** @description Replaced */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["ManagedProvider"];
					};
				};
				/** @description Registered */
				201: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["ManagedProvider"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		post?: never;
		/**
		 * Delete a generic HTTP provisioner that has nothing provisioned any more
		 * @description 409 `conflict` while any user still has its credential or resources it recorded: deprovisioning needs its URL and secret. Disable it (PUT with enabled: false) to stop new provisioning.
		 */
		delete: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description Deleted */
				204: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/proxy/{credential_id}/{path}": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * GET through the credential's target, with its secret injected
		 * @description Forwards the request to the credential's own target with its secret injected, so the caller never holds the secret: a `host_scoped` credential's `host`, or for OAuth2, API-key and password credentials their provider's `api_base_url` (with `{path}` below it). Never a host the caller names; https only, never a private, link-local, loopback or metadata address (loopback over http only where LATCHKEY_PROXY_ALLOW_LOOPBACK allows it).
		 *
		 *     Injected: `Authorization: Bearer` (OAuth2), the provider's declared header or query parameter (API key; default `Authorization: Bearer`), the stored headers (host_scoped), `Authorization: Basic` (user_password). The caller's `Authorization`, cookies, hop-by-hop and client-address headers are not forwarded.
		 *
		 *     The answer is the upstream's status, headers and body, streamed, plus `X-Latchkey-Request-Id`; the upstream's cookies, hop-by-hop and CORS headers and any header carrying the secret are dropped. Redirects are not followed; one to another host is refused (502 `upstream_unavailable`). Bodies stream both ways (request bodies up to LATCHKEY_PROXY_MAX_REQUEST_BYTES, default 100 MiB; the 64 KiB JSON limit does not apply). An upstream 401 to an OAuth2 token makes one forced refresh and one retry (bodies up to 64 KiB). Every method is proxied (HEAD too) except OPTIONS, which is answered as a CORS preflight. Each call counts against the caller's lease rate and the credential's lease cap (429), and a revoked key is refused at once. 504 `upstream_timeout` when the upstream says nothing for LATCHKEY_PROXY_TIMEOUT_SECONDS (default 30) after the request's last byte. See docs/proxy.md.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					credential_id: string;
					/** @description The rest of the path, slashes included, put below the target's root with the query unchanged; it cannot leave the root. */
					path: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The upstream's answer, whatever its status: status, headers and body unchanged (see the description), plus X-Latchkey-Request-Id */
				200: {
					headers: {
						/** @description Latchkey's request id */
						"X-Latchkey-Request-Id": string;
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Body over 64 KiB */
				413: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Rate limited (see Retry-After) */
				429: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Upstream provider unavailable */
				502: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Dependency unavailable (see Retry-After) */
				503: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description The upstream said nothing in time (`upstream_timeout`) */
				504: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		/**
		 * PUT through the credential's target, with its secret injected
		 * @description Forwards the request to the credential's own target with its secret injected, so the caller never holds the secret: a `host_scoped` credential's `host`, or for OAuth2, API-key and password credentials their provider's `api_base_url` (with `{path}` below it). Never a host the caller names; https only, never a private, link-local, loopback or metadata address (loopback over http only where LATCHKEY_PROXY_ALLOW_LOOPBACK allows it).
		 *
		 *     Injected: `Authorization: Bearer` (OAuth2), the provider's declared header or query parameter (API key; default `Authorization: Bearer`), the stored headers (host_scoped), `Authorization: Basic` (user_password). The caller's `Authorization`, cookies, hop-by-hop and client-address headers are not forwarded.
		 *
		 *     The answer is the upstream's status, headers and body, streamed, plus `X-Latchkey-Request-Id`; the upstream's cookies, hop-by-hop and CORS headers and any header carrying the secret are dropped. Redirects are not followed; one to another host is refused (502 `upstream_unavailable`). Bodies stream both ways (request bodies up to LATCHKEY_PROXY_MAX_REQUEST_BYTES, default 100 MiB; the 64 KiB JSON limit does not apply). An upstream 401 to an OAuth2 token makes one forced refresh and one retry (bodies up to 64 KiB). Every method is proxied (HEAD too) except OPTIONS, which is answered as a CORS preflight. Each call counts against the caller's lease rate and the credential's lease cap (429), and a revoked key is refused at once. 504 `upstream_timeout` when the upstream says nothing for LATCHKEY_PROXY_TIMEOUT_SECONDS (default 30) after the request's last byte. See docs/proxy.md.
		 */
		put: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					credential_id: string;
					/** @description The rest of the path, slashes included, put below the target's root with the query unchanged; it cannot leave the root. */
					path: string;
				};
				cookie?: never;
			};
			/** @description Forwarded unchanged, streamed */
			requestBody?: {
				content: {
					"*/*": string;
				};
			};
			responses: {
				/** @description The upstream's answer, whatever its status: status, headers and body unchanged (see the description), plus X-Latchkey-Request-Id */
				200: {
					headers: {
						/** @description Latchkey's request id */
						"X-Latchkey-Request-Id": string;
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Body over 64 KiB */
				413: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Rate limited (see Retry-After) */
				429: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Upstream provider unavailable */
				502: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Dependency unavailable (see Retry-After) */
				503: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description The upstream said nothing in time (`upstream_timeout`) */
				504: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		/**
		 * POST through the credential's target, with its secret injected
		 * @description Forwards the request to the credential's own target with its secret injected, so the caller never holds the secret: a `host_scoped` credential's `host`, or for OAuth2, API-key and password credentials their provider's `api_base_url` (with `{path}` below it). Never a host the caller names; https only, never a private, link-local, loopback or metadata address (loopback over http only where LATCHKEY_PROXY_ALLOW_LOOPBACK allows it).
		 *
		 *     Injected: `Authorization: Bearer` (OAuth2), the provider's declared header or query parameter (API key; default `Authorization: Bearer`), the stored headers (host_scoped), `Authorization: Basic` (user_password). The caller's `Authorization`, cookies, hop-by-hop and client-address headers are not forwarded.
		 *
		 *     The answer is the upstream's status, headers and body, streamed, plus `X-Latchkey-Request-Id`; the upstream's cookies, hop-by-hop and CORS headers and any header carrying the secret are dropped. Redirects are not followed; one to another host is refused (502 `upstream_unavailable`). Bodies stream both ways (request bodies up to LATCHKEY_PROXY_MAX_REQUEST_BYTES, default 100 MiB; the 64 KiB JSON limit does not apply). An upstream 401 to an OAuth2 token makes one forced refresh and one retry (bodies up to 64 KiB). Every method is proxied (HEAD too) except OPTIONS, which is answered as a CORS preflight. Each call counts against the caller's lease rate and the credential's lease cap (429), and a revoked key is refused at once. 504 `upstream_timeout` when the upstream says nothing for LATCHKEY_PROXY_TIMEOUT_SECONDS (default 30) after the request's last byte. See docs/proxy.md.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					credential_id: string;
					/** @description The rest of the path, slashes included, put below the target's root with the query unchanged; it cannot leave the root. */
					path: string;
				};
				cookie?: never;
			};
			/** @description Forwarded unchanged, streamed */
			requestBody?: {
				content: {
					"*/*": string;
				};
			};
			responses: {
				/** @description The upstream's answer, whatever its status: status, headers and body unchanged (see the description), plus X-Latchkey-Request-Id */
				200: {
					headers: {
						/** @description Latchkey's request id */
						"X-Latchkey-Request-Id": string;
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Body over 64 KiB */
				413: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Rate limited (see Retry-After) */
				429: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Upstream provider unavailable */
				502: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Dependency unavailable (see Retry-After) */
				503: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description The upstream said nothing in time (`upstream_timeout`) */
				504: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		/**
		 * DELETE through the credential's target, with its secret injected
		 * @description Forwards the request to the credential's own target with its secret injected, so the caller never holds the secret: a `host_scoped` credential's `host`, or for OAuth2, API-key and password credentials their provider's `api_base_url` (with `{path}` below it). Never a host the caller names; https only, never a private, link-local, loopback or metadata address (loopback over http only where LATCHKEY_PROXY_ALLOW_LOOPBACK allows it).
		 *
		 *     Injected: `Authorization: Bearer` (OAuth2), the provider's declared header or query parameter (API key; default `Authorization: Bearer`), the stored headers (host_scoped), `Authorization: Basic` (user_password). The caller's `Authorization`, cookies, hop-by-hop and client-address headers are not forwarded.
		 *
		 *     The answer is the upstream's status, headers and body, streamed, plus `X-Latchkey-Request-Id`; the upstream's cookies, hop-by-hop and CORS headers and any header carrying the secret are dropped. Redirects are not followed; one to another host is refused (502 `upstream_unavailable`). Bodies stream both ways (request bodies up to LATCHKEY_PROXY_MAX_REQUEST_BYTES, default 100 MiB; the 64 KiB JSON limit does not apply). An upstream 401 to an OAuth2 token makes one forced refresh and one retry (bodies up to 64 KiB). Every method is proxied (HEAD too) except OPTIONS, which is answered as a CORS preflight. Each call counts against the caller's lease rate and the credential's lease cap (429), and a revoked key is refused at once. 504 `upstream_timeout` when the upstream says nothing for LATCHKEY_PROXY_TIMEOUT_SECONDS (default 30) after the request's last byte. See docs/proxy.md.
		 */
		delete: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					credential_id: string;
					/** @description The rest of the path, slashes included, put below the target's root with the query unchanged; it cannot leave the root. */
					path: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The upstream's answer, whatever its status: status, headers and body unchanged (see the description), plus X-Latchkey-Request-Id */
				200: {
					headers: {
						/** @description Latchkey's request id */
						"X-Latchkey-Request-Id": string;
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Body over 64 KiB */
				413: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Rate limited (see Retry-After) */
				429: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Upstream provider unavailable */
				502: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Dependency unavailable (see Retry-After) */
				503: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description The upstream said nothing in time (`upstream_timeout`) */
				504: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		options?: never;
		head?: never;
		/**
		 * PATCH through the credential's target, with its secret injected
		 * @description Forwards the request to the credential's own target with its secret injected, so the caller never holds the secret: a `host_scoped` credential's `host`, or for OAuth2, API-key and password credentials their provider's `api_base_url` (with `{path}` below it). Never a host the caller names; https only, never a private, link-local, loopback or metadata address (loopback over http only where LATCHKEY_PROXY_ALLOW_LOOPBACK allows it).
		 *
		 *     Injected: `Authorization: Bearer` (OAuth2), the provider's declared header or query parameter (API key; default `Authorization: Bearer`), the stored headers (host_scoped), `Authorization: Basic` (user_password). The caller's `Authorization`, cookies, hop-by-hop and client-address headers are not forwarded.
		 *
		 *     The answer is the upstream's status, headers and body, streamed, plus `X-Latchkey-Request-Id`; the upstream's cookies, hop-by-hop and CORS headers and any header carrying the secret are dropped. Redirects are not followed; one to another host is refused (502 `upstream_unavailable`). Bodies stream both ways (request bodies up to LATCHKEY_PROXY_MAX_REQUEST_BYTES, default 100 MiB; the 64 KiB JSON limit does not apply). An upstream 401 to an OAuth2 token makes one forced refresh and one retry (bodies up to 64 KiB). Every method is proxied (HEAD too) except OPTIONS, which is answered as a CORS preflight. Each call counts against the caller's lease rate and the credential's lease cap (429), and a revoked key is refused at once. 504 `upstream_timeout` when the upstream says nothing for LATCHKEY_PROXY_TIMEOUT_SECONDS (default 30) after the request's last byte. See docs/proxy.md.
		 */
		patch: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					credential_id: string;
					/** @description The rest of the path, slashes included, put below the target's root with the query unchanged; it cannot leave the root. */
					path: string;
				};
				cookie?: never;
			};
			/** @description Forwarded unchanged, streamed */
			requestBody?: {
				content: {
					"*/*": string;
				};
			};
			responses: {
				/** @description The upstream's answer, whatever its status: status, headers and body unchanged (see the description), plus X-Latchkey-Request-Id */
				200: {
					headers: {
						/** @description Latchkey's request id */
						"X-Latchkey-Request-Id": string;
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Body over 64 KiB */
				413: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Rate limited (see Retry-After) */
				429: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Upstream provider unavailable */
				502: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Dependency unavailable (see Retry-After) */
				503: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description The upstream said nothing in time (`upstream_timeout`) */
				504: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		trace?: never;
	};
	"/v1/audit": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * Audit events: a user's own, or (the admin token) everyone's; newest first
		 * @description A user sees the events about themselves and their objects (their leases, credentials, keys and sessions, and what the admin did to their account); the admin token sees every event. Filters combine: `action`, `target` (`<type>` or `<type>:<id>`), `user_id`, and the time range `since` (inclusive) … `until` (exclusive). An event about another user's object is simply absent. Events are written just after the response that caused them, so one may appear a moment after it.
		 */
		get: {
			parameters: {
				query?: {
					/** @description Page size, 1–100. */
					limit?: number;
					/** @description The `next_cursor` of the previous page; omit for the first page. */
					cursor?: string;
					/** @description Only this action */
					action?:
						| "lease.granted"
						| "lease.refused"
						| "lease.renewed"
						| "lease.released"
						| "credential.created"
						| "credential.updated"
						| "credential.deleted"
						| "credential.reconnect_required"
						| "api_key.created"
						| "api_key.imported"
						| "api_key.rolled"
						| "api_key.revoked"
						| "session.revoked"
						| "session.refresh_token_reused"
						| "user.created"
						| "user.updated"
						| "user.suspended"
						| "user.reactivated"
						| "user.deletion_requested"
						| "user.purged"
						| "provider.updated"
						| "provider.deleted"
						| "deprovision.succeeded"
						| "deprovision.retried"
						| "deprovision.failed"
						| "proxy.call";
					/** @description `<type>` or `<type>:<id>`: events about that kind of object, or that one object */
					target?: string;
					/** @description Only events about this user (for a user, their own id, or nothing matches) */
					user_id?: string;
					/** @description From this instant, inclusive */
					since?: string;
					/** @description Before this instant, exclusive */
					until?: string;
				};
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page of events */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["AuditEventList"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/audit/export": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * Every audit event as NDJSON, oldest first, streamed
		 * @description One JSON object per line: the event as GET /v1/audit shows it to the admin, plus its chain, seq, prev_hash and hash, so the chains can be re-verified elsewhere (docs/audit.md). Same filters as GET /v1/audit. Read page by page while it streams: an export of any size holds one page in memory.
		 */
		get: {
			parameters: {
				query?: {
					/** @description Only this action */
					action?:
						| "lease.granted"
						| "lease.refused"
						| "lease.renewed"
						| "lease.released"
						| "credential.created"
						| "credential.updated"
						| "credential.deleted"
						| "credential.reconnect_required"
						| "api_key.created"
						| "api_key.imported"
						| "api_key.rolled"
						| "api_key.revoked"
						| "session.revoked"
						| "session.refresh_token_reused"
						| "user.created"
						| "user.updated"
						| "user.suspended"
						| "user.reactivated"
						| "user.deletion_requested"
						| "user.purged"
						| "provider.updated"
						| "provider.deleted"
						| "deprovision.succeeded"
						| "deprovision.retried"
						| "deprovision.failed"
						| "proxy.call";
					/** @description `<type>` or `<type>:<id>`: events about that kind of object, or that one object */
					target?: string;
					/** @description Only events about this user (for a user, their own id, or nothing matches) */
					user_id?: string;
					/** @description From this instant, inclusive */
					since?: string;
					/** @description Before this instant, exclusive */
					until?: string;
				};
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description NDJSON, one event per line */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/x-ndjson": components["schemas"]["AuditExportLine"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/audit/verify": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * Check the audit hash chains (all, or those of a day range)
		 * @description Recomputes every row's hash from its columns and the previous row's, checks that seqs run from 1 without gaps and that each chain ends at its head; 200 with `ok: false` and the first break (chain, seq, event, reason) when one does not hold. Days that have left the retention (LATCHKEY_AUDIT_RETENTION_DAYS) are deleted whole by the scheduled worker and not checked. What this does and does not prove: docs/audit.md.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: {
				content: {
					"application/json": components["schemas"]["AuditVerifyRequest"];
				};
			};
			responses: {
				/** @description The verdict */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["AuditVerification"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Dependency unavailable (see Retry-After) */
				503: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/webhooks/{id}": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** Get a webhook (never its secret) */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The webhook */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Webhook"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		/**
		 * Register or replace a webhook
		 * @description Deliveries of the chosen events are POSTed to `url`, signed per the Standard Webhooks spec (docs/webhooks.md). The URL must be one Latchkey will call (https, a public host). Without `secret`, a new webhook gets a generated one, returned once in `secret`.
		 */
		put: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody: {
				content: {
					"application/json": components["schemas"]["WebhookInput"];
				};
			};
			responses: {
				/** @description Replaced */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["WebhookWithSecret"];
					};
				};
				/** @description Created */
				201: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["WebhookWithSecret"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Body over 64 KiB */
				413: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		post?: never;
		/**
		 * Delete a webhook and its deliveries
		 * @description Deliveries not yet sent are dropped with it.
		 */
		delete: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description Deleted */
				204: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/webhooks": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/** List webhooks, oldest first */
		get: {
			parameters: {
				query?: {
					/** @description Page size, 1–100. */
					limit?: number;
					/** @description The `next_cursor` of the previous page; omit for the first page. */
					cursor?: string;
				};
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page of webhooks */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["WebhookList"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/webhooks/{id}/deliveries": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * A webhook's deliveries, oldest first
		 * @description Each event × webhook is one delivery: `pending` (due at `next_attempt_at`), `delivered`, or `failed` once its attempts ran out (the dead letter).
		 */
		get: {
			parameters: {
				query?: {
					/** @description Page size, 1–100. */
					limit?: number;
					/** @description The `next_cursor` of the previous page; omit for the first page. */
					cursor?: string;
					/** @description Only deliveries with this status */
					status?: "pending" | "delivered" | "failed";
				};
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page of deliveries */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["WebhookDeliveryList"];
					};
				};
				/** @description Invalid request (`invalid_request`; `detail` lists the fields) */
				400: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/v1/admin/webhooks/{id}/deliveries/{delivery_id}/redeliver": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * Send a delivery again
		 * @description The delivery becomes `pending`, due now, with its attempts reset; the scheduled worker sends it (same `webhook-id`, same body, a new timestamp and signature). 409 `conflict` while a run is sending it.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
					delivery_id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The delivery, queued again */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["WebhookDelivery"];
					};
				};
				/** @description Missing or invalid credentials */
				401: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Forbidden or insufficient scope */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Not found (also for other users' objects) */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
				/** @description Conflict */
				409: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"application/json": components["schemas"]["Error"];
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * The console: to the signed-in principal's first page, or to sign-in
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To sign-in when there is no session */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description A page */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/sign-in": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * Sign-in page (API key, or the admin token)
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To sign-in when there is no session */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description A page */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		put?: never;
		/**
		 * Exchange an API key (or the admin token) for a console session
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To the page showing the result */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Refused: a missing or foreign CSRF token, or another origin */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/sign-out": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * End the console session (the API session is revoked too)
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To the page showing the result */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Refused: a missing or foreign CSRF token, or another origin */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/integrations": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * The user's credentials by provider, and Connect per OAuth provider
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To sign-in when there is no session */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description A page */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/connect/{provider}": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * Start an OAuth connection (or a reconnect) in the browser
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					provider: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To sign-in when there is no session */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description A page */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/connected": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * Where a connection returns: finishes it for the signed-in user
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To sign-in when there is no session */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description A page */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/credentials/{id}/delete": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * Delete a credential of the user's
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To the page showing the result */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Refused: a missing or foreign CSRF token, or another origin */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/keys": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * The user's API keys
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To sign-in when there is no session */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description A page */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		put?: never;
		/**
		 * Create an API key, shown once
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To the page showing the result */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Refused: a missing or foreign CSRF token, or another origin */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/keys/{id}/roll": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * Roll an API key, the new one shown once
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To the page showing the result */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Refused: a missing or foreign CSRF token, or another origin */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/keys/{id}/revoke": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * Revoke an API key
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To the page showing the result */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Refused: a missing or foreign CSRF token, or another origin */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/audit": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * The user's audit trail, or the admin's whole log
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To sign-in when there is no session */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description A page */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/admin/users": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * Users (admin)
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To sign-in when there is no session */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description A page */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		put?: never;
		/**
		 * Create a user (admin)
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To the page showing the result */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Refused: a missing or foreign CSRF token, or another origin */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/admin/users/{id}/status": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * Suspend or reactivate a user (admin)
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To the page showing the result */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Refused: a missing or foreign CSRF token, or another origin */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/admin/users/{id}/delete": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * Delete a user (admin)
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To the page showing the result */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Refused: a missing or foreign CSRF token, or another origin */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/admin/jobs": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * Account-deletion jobs, failed first (admin)
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To sign-in when there is no session */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description A page */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/admin/jobs/{id}/retry": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * Retry a failed job (admin)
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To the page showing the result */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Refused: a missing or foreign CSRF token, or another origin */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/admin/webhooks": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * Webhooks (admin)
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To sign-in when there is no session */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description A page */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/admin/webhooks/{id}": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * A webhook's deliveries (admin)
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To sign-in when there is no session */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description A page */
				404: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/admin/webhooks/{id}/deliveries/{delivery}/redeliver": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		get?: never;
		put?: never;
		/**
		 * Redeliver a delivery (admin)
		 * @description Server-rendered for a browser: a session cookie (`__Host-latchkey_console`, HttpOnly, Secure, SameSite=Lax), and on a POST a form body with `_csrf`. See docs/console.md.
		 */
		post: {
			parameters: {
				query?: never;
				header?: never;
				path: {
					id: string;
					delivery: string;
				};
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description A page */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
				/** @description To the page showing the result */
				303: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
				/** @description Refused: a missing or foreign CSRF token, or another origin */
				403: {
					headers: {
						[name: string]: unknown;
					};
					content: {
						"text/html": string;
					};
				};
			};
		};
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/assets/console.css": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * The console's stylesheet
		 * @description Served from the worker, so the console's CSP allows its own origin only.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The asset */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/assets/console.js": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * The console's script (the copy button)
		 * @description Served from the worker, so the console's CSP allows its own origin only.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The asset */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
	"/console/assets/icon.svg": {
		parameters: {
			query?: never;
			header?: never;
			path?: never;
			cookie?: never;
		};
		/**
		 * The console's icon
		 * @description Served from the worker, so the console's CSP allows its own origin only.
		 */
		get: {
			parameters: {
				query?: never;
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: {
				/** @description The asset */
				200: {
					headers: {
						[name: string]: unknown;
					};
					content?: never;
				};
			};
		};
		put?: never;
		post?: never;
		delete?: never;
		options?: never;
		head?: never;
		patch?: never;
		trace?: never;
	};
}
export type webhooks = Record<string, never>;
export interface components {
	schemas: {
		Readiness: {
			/** @enum {string} */
			status: "ok" | "unavailable";
			/** @enum {string} */
			postgres: "ok" | "unavailable";
			/** @enum {string} */
			redis: "ok" | "unavailable";
		};
		Error: {
			error: {
				/** @example invalid_request */
				code: string;
				message: string;
				/** @description What to do; never empty */
				hint: string;
				detail?: unknown;
				request_id: string;
			};
		};
		TokenResponse: {
			access_token: string;
			/** @enum {string} */
			token_type: "Bearer";
			expires_in: number;
			refresh_token: string;
			refresh_expires_in: number;
			scope: string;
		};
		TokenRequest:
			| {
					/** @enum {string} */
					grant_type: "api_key";
					api_key: string;
			  }
			| {
					/** @enum {string} */
					grant_type: "refresh_token";
					refresh_token: string;
			  };
		JWKS: {
			keys: {
				[key: string]: unknown;
			}[];
		};
		Principal: {
			user_id: string | null;
			method: string;
			scopes: string[];
			session_id: string | null;
		};
		NewApiKey: components["schemas"]["ApiKey"] & {
			/** @description The key itself. Shown in this response only. */
			key: string;
		};
		ApiKey: {
			id: string;
			name: string;
			scopes: (
				| "credentials:read"
				| "credentials:write"
				| "credentials:use"
				| "keys:write"
				| "admin"
			)[];
			/** @enum {string} */
			kind: "standard" | "legacy";
			created_at: string;
			expires_at: string | null;
			last_used_at: string | null;
		};
		CreateApiKey: {
			name: string;
			/** @description Scopes of the new key, each one the creator holds (`admin` never); default: every scope of the creator but `admin`. An unknown name is 400 `invalid_request`. */
			scopes?: (
				| "credentials:read"
				| "credentials:write"
				| "credentials:use"
				| "keys:write"
				| "admin"
			)[];
			/** Format: date-time */
			expires_at?: string;
		};
		ApiKeyList: {
			data: components["schemas"]["ApiKey"][];
			next_cursor: string | null;
		};
		User: {
			/** @example usr_4f9QbX2mT7aLkP0sVd1e */
			id: string;
			/**
			 * Format: email
			 * @example ada@example.com
			 */
			email: string;
			/** @example Ada Lovelace */
			name: string | null;
			/**
			 * @description IANA time zone name
			 * @example Europe/London
			 */
			timezone: string;
			/** @enum {string} */
			status: "active" | "suspended" | "deleting";
			email_verified: boolean;
			/**
			 * @description Notification channels and whether each is on
			 * @example {
			 *       "email": true
			 *     }
			 */
			notifications: {
				[key: string]: boolean;
			};
			/** Format: date-time */
			created_at: string;
		};
		ProfileUpdate: {
			/**
			 * @description Display name; null clears it
			 * @example Ada Lovelace
			 */
			name?: string | null;
			/**
			 * @description IANA time zone name
			 * @example Europe/Paris
			 */
			timezone?: string;
			/** @description Merged into the current preferences: channels left out keep their setting */
			notifications?: {
				email?: boolean;
			};
		};
		DeletionAccepted: {
			/** @enum {string} */
			status: "deleting";
		};
		UserCreate: {
			/**
			 * Format: email
			 * @description Stored lower-cased; unique case-insensitively
			 * @example ada@example.com
			 */
			email: string;
			/**
			 * @description Display name; null clears it
			 * @example Ada Lovelace
			 */
			name?: string | null;
		};
		UserList: {
			data: components["schemas"]["User"][];
			next_cursor: string | null;
		};
		AdminUserUpdate: {
			/**
			 * @description A suspended user's keys and tokens are refused with 403 user_suspended
			 * @enum {string}
			 */
			status?: "active" | "suspended";
			/**
			 * @description Display name; null clears it
			 * @example Ada Lovelace
			 */
			name?: string | null;
		};
		Unsubscribed: {
			/** @enum {boolean} */
			unsubscribed: true;
		};
		/** @description Metadata only: a credential object never carries a secret. */
		Credential: {
			id: string;
			provider: string;
			/** @enum {string} */
			type: "oauth2" | "api_key" | "user_password" | "host_scoped";
			title: string;
			scopes: string[];
			username: string | null;
			host: string | null;
			/** @enum {string} */
			status: "active" | "reconnect_required" | "revoked";
			managed: boolean;
			system: boolean;
			metadata: {
				[key: string]: unknown;
			};
			/** @description Grows with every change of the row; the ETag of responses holding it. */
			version: number;
			access_token_expires_at: string | null;
			created_at: string;
			updated_at: string;
			last_used_at: string | null;
		};
		CreateCredential:
			| {
					provider: string;
					title?: string;
					metadata?: {
						[key: string]: unknown;
					};
					/** @enum {string} */
					type: "api_key";
					api_key: string;
					/** Format: date-time */
					expires_at?: string;
			  }
			| {
					provider: string;
					title?: string;
					metadata?: {
						[key: string]: unknown;
					};
					/** @enum {string} */
					type: "user_password";
					username: string;
					password: string;
			  }
			| {
					provider: string;
					title?: string;
					metadata?: {
						[key: string]: unknown;
					};
					/** @enum {string} */
					type: "host_scoped";
					host: string;
					headers: {
						[key: string]: string;
					};
			  }
			| {
					provider: string;
					title?: string;
					metadata?: {
						[key: string]: unknown;
					};
					/** @enum {string} */
					type: "oauth2";
					access_token: string;
					refresh_token?: string;
					token_type?: string;
					/** Format: date-time */
					access_token_expires_at?: string;
					scopes?: string[];
					username?: string;
			  };
		CredentialList: {
			data: components["schemas"]["Credential"][];
			next_cursor: string | null;
		};
		/** @description Only the title, metadata and the secret fields of the credential's own type. */
		UpdateCredential: {
			/** @enum {string} */
			type?: "oauth2" | "api_key" | "user_password" | "host_scoped";
			title?: string;
			metadata?: {
				[key: string]: unknown;
			};
			api_key?: string;
			/** Format: date-time */
			expires_at?: string | null;
			username?: string;
			password?: string;
			host?: string;
			headers?: {
				[key: string]: string;
			};
			access_token?: string;
			refresh_token?: string;
			/** Format: date-time */
			access_token_expires_at?: string | null;
			scopes?: string[];
		};
		CredentialDeleted: {
			/** @enum {boolean} */
			deleted: true;
			revoked: boolean | null;
		};
		Lease: {
			lease_id: string;
			credential_id: string;
			/**
			 * Format: date-time
			 * @description The lease's end: its TTL, cut to the token's expiry when that comes first.
			 */
			expires_at: string;
			/** Format: date-time */
			token_expires_at: string | null;
			secret: components["schemas"]["LeaseSecret"];
		};
		/** @description Exactly the keys of its type. The refresh token never leaves Latchkey. */
		LeaseSecret:
			| {
					/** @enum {string} */
					type: "oauth2";
					access_token: string;
					token_type: string;
			  }
			| {
					/** @enum {string} */
					type: "api_key";
					api_key: string;
			  }
			| {
					/** @enum {string} */
					type: "user_password";
					username: string | null;
					password: string;
			  }
			| {
					/** @enum {string} */
					type: "host_scoped";
					host: string | null;
					headers: {
						[key: string]: string;
					};
			  };
		LeaseRenewed: {
			/** Format: date-time */
			expires_at: string;
		};
		ProviderList: {
			data: components["schemas"]["Provider"][];
			next_cursor: string | null;
		};
		Provider: {
			/** @example github */
			id: string;
			/** @example GitHub */
			name: string;
			auth_types: ("oauth2" | "api_key")[];
			default_scopes: string[];
			/** @description Ready to use: for an OAuth2 provider, a client is set so users can connect it; always true for an API-key-only or managed provider (its auth_types lack `oauth2`: it is never connected through OAuth) */
			configured: boolean;
			/** @description The platform provisions this provider's credentials itself */
			managed: boolean;
		};
		/** @description A registered provider: an OAuth2 provider (`kind: oauth2`) or an API-key-only one (`kind: api_key`). Never contains the client secret. */
		ProviderConfig:
			| components["schemas"]["OAuthProviderConfig"]
			| components["schemas"]["ApiKeyProviderConfig"];
		/** @description Never contains the client secret. */
		OAuthProviderConfig: components["schemas"]["Provider"] & {
			/**
			 * @description An OAuth2 provider: users connect it
			 * @enum {string}
			 */
			kind: "oauth2";
			/** @description Endpoints are Latchkey's; only the client is set */
			builtin: boolean;
			authorize_url: string;
			token_url: string;
			revoke_url: string | null;
			userinfo_url: string | null;
			issuer: string | null;
			scope_separator: string;
			pkce: boolean;
			/** @enum {string} */
			client_auth: "basic" | "post";
			authorize_params: {
				[key: string]: string;
			};
			refresh_invalidates_access_token: boolean;
			refresh_token_rotates: boolean;
			/** @description Where the authenticated proxy (`/v1/proxy/{credential_id}/{path}`) sends this provider's OAuth2 and API-key credentials; null: not proxied */
			api_base_url: string | null;
			api_key_placement: components["schemas"]["ApiKeyPlacement"];
			client_id: string | null;
			/** @enum {string|null} */
			client_source: "admin" | "env" | null;
			updated_at: string | null;
		} & {
			/**
			 * @description discriminator enum property added by openapi-typescript
			 * @enum {string}
			 */
			kind: "oauth2";
		};
		/** @description How the authenticated proxy sends an API key of this provider: in a header (with an optional prefix) or as a query parameter. Default `{"in":"header","name":"Authorization","prefix":"Bearer "}`. */
		ApiKeyPlacement:
			| {
					/** @enum {string} */
					in: "header";
					name: string;
					/**
					 * @description Sent before the key, e.g. `Bearer ` (mind the space)
					 * @default
					 */
					prefix: string;
			  }
			| {
					/** @enum {string} */
					in: "query";
					name: string;
			  };
		ApiKeyProviderConfig: components["schemas"]["Provider"] & {
			/**
			 * @description An API-key-only provider: users store its keys as api_key credentials and call its API through the proxy; it has no OAuth endpoints or client and is never connected
			 * @enum {string}
			 */
			kind: "api_key";
			/** @enum {boolean} */
			builtin: false;
			/** @description Where the authenticated proxy (`/v1/proxy/{credential_id}/{path}`) sends this provider's API-key credentials */
			api_base_url: string;
			api_key_placement: components["schemas"]["ApiKeyPlacement"];
			updated_at: string;
		} & {
			/**
			 * @description discriminator enum property added by openapi-typescript
			 * @enum {string}
			 */
			kind: "api_key";
		};
		/** @description A custom id is one of two kinds. An OAuth2 provider: name, authorize_url, token_url, client_id and client_secret are required. An API-key-only provider (for the authenticated proxy): name and api_base_url, optionally api_key_placement, and none of the OAuth fields (authorize_url, token_url, revoke_url, userinfo_url, issuer, default_scopes, scope_separator, pkce, client_auth, authorize_params, refresh_invalidates_access_token, refresh_token_rotates, client_id, client_secret); a body with some OAuth fields but not all the required ones is a 400. A built-in id is always OAuth2 and takes the OAuth body with only client_id and client_secret required: every field sent overrides the built-in value (how GitHub Enterprise or a self-hosted GitLab is reached); a field left out, or null, keeps the built-in value. */
		ProviderPut: {
			name?: string;
			/**
			 * Format: uri
			 * @description An absolute http(s) URL
			 */
			authorize_url?: string;
			/**
			 * Format: uri
			 * @description An absolute http(s) URL
			 */
			token_url?: string;
			/**
			 * Format: uri
			 * @description An absolute http(s) URL
			 */
			revoke_url?: string | null;
			/**
			 * Format: uri
			 * @description An absolute http(s) URL
			 */
			userinfo_url?: string | null;
			/** @description RFC 9207 issuer; when set, authorization responses must carry it as `iss` */
			issuer?: string | null;
			default_scopes?: string[];
			/** @example  */
			scope_separator?: string;
			pkce?: boolean;
			/** @enum {string} */
			client_auth?: "basic" | "post";
			authorize_params?: {
				[key: string]: string;
			};
			client_id?: string;
			/** @description Write-only; stored sealed */
			client_secret?: string;
			refresh_invalidates_access_token?: boolean;
			refresh_token_rotates?: boolean;
			/**
			 * Format: uri
			 * @description The API root the authenticated proxy forwards this provider's OAuth2 and API-key credentials to: https, a public host, a path prefix at most (no query). Proxied paths stay below it.
			 * @example https://api.github.com
			 */
			api_base_url?: string | null;
			api_key_placement?: components["schemas"]["ApiKeyPlacement"];
		};
		Authorization: {
			authorization_url: string;
			/** @description Single use; carried back by the provider */
			state: string;
			/** Format: date-time */
			expires_at: string;
		};
		AuthorizeRequest: {
			/** @description Replace the provider's default scopes */
			scopes?: string[];
			/** @description Scope upgrade of this credential: its scopes are kept and added to */
			credential_id?: string;
			/** @description Where the provider sends the user; default `{LATCHKEY_PUBLIC_URL}/v1/oauth/callback`. Its origin must be allowed. */
			redirect_uri?: string;
			/** @description Where GET /v1/oauth/callback redirects afterwards with a one-time `connect_id=` (finish with POST /v1/oauth/connections/{connect_id}) or `error=`. Its origin must be allowed. */
			return_to?: string;
		};
		OAuthCallback: {
			code: string;
			state: string;
			/** @description The `iss` of the authorization response, when the provider sent one */
			iss?: string;
		};
		MaintenanceSummary: {
			/** Format: date-time */
			started_at: string;
			duration_ms: number;
			jobs: components["schemas"]["MaintenanceJobResult"][];
		};
		MaintenanceJobResult: {
			/** @example account-deletion */
			name: string;
			ok: boolean;
			duration_ms: number;
			/** @description The job's counters (see docs/operations.md) */
			result?: {
				[key: string]: number;
			};
			error?: string;
		};
		MaintenanceRequest: {
			/** @description Run the account deletion (its jobs and purge) and the proactive refresh of this user only; the other scheduled work runs as usual */
			user_id?: string;
		};
		JobList: {
			data: components["schemas"]["Job"][];
			next_cursor: string | null;
		};
		Job: {
			/** @example job_0cc175b9c0f1b6a831c399e269772661 */
			id: string;
			/** @example usr_4f9QbX2mT7aLkP0sVd1e */
			user_id: string;
			/**
			 * @description `deprovision_managed`: delete what a managed provider created for the user (after checking it is theirs); `revoke_oauth`: revoke an OAuth credential's tokens at its provider
			 * @enum {string}
			 */
			kind: "deprovision_managed" | "revoke_oauth";
			/** @enum {string} */
			status: "pending" | "running" | "done" | "failed";
			/** @description Attempts made so far */
			attempts: number;
			/**
			 * Format: date-time
			 * @description When a pending job is next tried (after a failure: exponential backoff with jitter)
			 */
			next_attempt_at: string;
			/** @description Why the last attempt failed (or, for a done job, a note such as 'no revocation endpoint'); never a secret */
			last_error: string | null;
			/** Format: date-time */
			created_at: string;
			/** Format: date-time */
			updated_at: string;
		};
		ManagedProviderList: {
			data: components["schemas"]["ManagedProvider"][];
			next_cursor: string | null;
		};
		/** @description Never contains the HMAC secret. */
		ManagedProvider: {
			id: string;
			name: string;
			provision_url: string;
			deprovision_url: string;
			enabled: boolean;
			created_at: string;
			updated_at: string;
		};
		ManagedProviderPut: {
			name: string;
			/**
			 * Format: uri
			 * @description An absolute http(s) URL
			 */
			provision_url: string;
			/**
			 * Format: uri
			 * @description An absolute http(s) URL
			 */
			deprovision_url: string;
			/**
			 * @description Disabled: no new provisioning; what it provisioned stays, and can still be deprovisioned
			 * @default true
			 */
			enabled: boolean;
			/** @description The HMAC-SHA256 key the provisioner verifies requests with. Required for a new provisioner; left out, the stored one is kept. Stored encrypted and never returned. */
			hmac_secret?: string;
		};
		AuditEventList: {
			data: components["schemas"]["AuditEvent"][];
			next_cursor: string | null;
		};
		AuditEvent: {
			/** @example aud_4f9QbX2mT7aLkP0sVd1e */
			id: string;
			/** Format: date-time */
			at: string;
			/** @enum {string} */
			action:
				| "lease.granted"
				| "lease.refused"
				| "lease.renewed"
				| "lease.released"
				| "credential.created"
				| "credential.updated"
				| "credential.deleted"
				| "credential.reconnect_required"
				| "api_key.created"
				| "api_key.imported"
				| "api_key.rolled"
				| "api_key.revoked"
				| "session.revoked"
				| "session.refresh_token_reused"
				| "user.created"
				| "user.updated"
				| "user.suspended"
				| "user.reactivated"
				| "user.deletion_requested"
				| "user.purged"
				| "provider.updated"
				| "provider.deleted"
				| "deprovision.succeeded"
				| "deprovision.retried"
				| "deprovision.failed"
				| "proxy.call";
			/**
			 * @description `denied`: refused by a rule (4xx); `failure`: something broke (5xx, a job)
			 * @enum {string}
			 */
			outcome: "success" | "denied" | "failure";
			principal: components["schemas"]["AuditPrincipal"];
			target: components["schemas"]["AuditTarget"];
			/** @description The user the event is about; null for events only the admin sees */
			user_id: string | null;
			/** @description The caller's address (CF-Connecting-IP); shown to a user only for their own requests */
			ip: string | null;
			request_id: string | null;
			/** @description Small and secret-free: ids, field names, error codes */
			detail: {
				[key: string]: unknown;
			};
		};
		AuditPrincipal: {
			/** @description `admin`, `api_key`, `legacy_key`, `access_token`, `external`, `refresh_token` (the token endpoints) or `system` (the scheduled worker) */
			method: string;
			user_id: string | null;
			key_id: string | null;
			session_id: string | null;
		};
		AuditTarget: {
			/** @enum {string} */
			type: "credential" | "lease" | "api_key" | "session" | "user" | "provider" | "job";
			id: string;
		} | null;
		/** @description One line of the export: the event, its place in its chain and its hashes, so the chains can be re-verified away from Latchkey (docs/audit.md) */
		AuditExportLine: components["schemas"]["AuditEvent"] & {
			/** @example 2026-12-05/3 */
			chain: string;
			seq: number;
			prev_hash: string;
			hash: string;
		};
		AuditVerification: {
			ok: boolean;
			/**
			 * Format: date
			 * @example 2026-12-05
			 */
			from: string | null;
			/**
			 * Format: date
			 * @example 2026-12-05
			 */
			to: string | null;
			/**
			 * Format: date
			 * @description Days before this one leave the retention whole and are not checked
			 * @example 2026-12-05
			 */
			retention_cutoff: string | null;
			chains: number;
			events: number;
			break: components["schemas"]["AuditChainBreak"];
		};
		/** @description The first break, in chain order */
		AuditChainBreak: {
			/** @example 2026-12-05/3 */
			chain: string;
			seq: number;
			event_id: string | null;
			/** @enum {string} */
			reason:
				| "hash_mismatch"
				| "prev_hash_mismatch"
				| "rows_missing"
				| "tail_missing"
				| "head_mismatch"
				| "head_missing";
			message: string;
		} | null;
		AuditVerifyRequest: {
			/**
			 * Format: date
			 * @description First day (UTC) to check; default the oldest
			 * @example 2026-12-05
			 */
			since?: string;
			/**
			 * Format: date
			 * @description Last day (UTC) to check, inclusive
			 * @example 2026-12-05
			 */
			until?: string;
		};
		WebhookWithSecret: components["schemas"]["Webhook"] & {
			/** @description The generated signing secret (`whsec_…`), present only in the answer that created it */
			secret?: string;
		};
		Webhook: {
			/** @example platform-events */
			id: string;
			url: string;
			events: (
				| "credential.reconnect_required"
				| "credential.deleted"
				| "user.deleted"
				| "deprovision.failed"
			)[];
			/** Format: date-time */
			created_at: string;
			/** Format: date-time */
			updated_at: string;
		};
		WebhookInput: {
			/**
			 * @description Where deliveries are POSTed: an https URL on a public host (docs/security.md, 'Outbound calls')
			 * @example https://platform.example.com/hooks/latchkey
			 */
			url: string;
			/** @description The event types to deliver (docs/webhooks.md) */
			events: (
				| "credential.reconnect_required"
				| "credential.deleted"
				| "user.deleted"
				| "deprovision.failed"
			)[];
			/** @description A Standard Webhooks secret (`whsec_` + base64 of 24–64 bytes). Omitted on creation: one is generated and returned once; omitted on a replacement: the current secret stays */
			secret?: string;
		};
		WebhookList: {
			data: components["schemas"]["Webhook"][];
			next_cursor: string | null;
		};
		WebhookDeliveryList: {
			data: components["schemas"]["WebhookDelivery"][];
			next_cursor: string | null;
		};
		WebhookDelivery: {
			/**
			 * @description Also the `webhook-id` header of every attempt
			 * @example whd_0cc175b9c0f1b6a831c399e269772661
			 */
			id: string;
			webhook_id: string;
			/** @enum {string} */
			event_type:
				| "credential.reconnect_required"
				| "credential.deleted"
				| "user.deleted"
				| "deprovision.failed";
			/**
			 * @description `failed`: every attempt failed (the dead letter); redeliver to try again
			 * @enum {string}
			 */
			status: "pending" | "delivered" | "failed";
			attempts: number;
			max_attempts: number;
			/** Format: date-time */
			next_attempt_at: string;
			/** @description The receiver's HTTP status on the last attempt; null when it gave none */
			last_status: number | null;
			last_error: string | null;
			/** Format: date-time */
			delivered_at: string | null;
			/** @description The exact body sent and signed (JSON) */
			payload: string;
			/** Format: date-time */
			created_at: string;
			/** Format: date-time */
			updated_at: string;
		};
	};
	responses: never;
	parameters: never;
	requestBodies: never;
	headers: never;
	pathItems: never;
}
export type $defs = Record<string, never>;
export type operations = Record<string, never>;
