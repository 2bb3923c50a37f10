import type { components, paths } from "./openapi.ts";

/**
 * Request and response types of every route, read off the generated `paths` (src/client/
 * openapi.ts): a route that the served document changes changes here, and code written against
 * the old shape stops compiling.
 */

export type Schemas = components["schemas"];
export type Lease = Schemas["Lease"];
export type LeaseSecret = Schemas["LeaseSecret"];
export type LeaseRenewed = Schemas["LeaseRenewed"];
export type TokenResponse = Schemas["TokenResponse"];
export type Credential = Schemas["Credential"];
export type ApiError = Schemas["Error"];

export type HttpMethod = "get" | "put" | "post" | "delete" | "patch";

/** The paths that have an operation for `M`. */
export type PathsFor<M extends HttpMethod> = {
	[P in keyof paths]: undefined extends paths[P][M] ? never : P;
}[keyof paths];

/** The operation object of `M` on `P`. */
export type Operation<P extends keyof paths, M extends HttpMethod> = NonNullable<paths[P][M]>;

type PathParamsPart<O> = O extends { parameters: { path: infer X } }
	? { params: X }
	: { params?: undefined };

type QueryPart<O> = O extends { parameters: { query: infer Q } }
	? { query: Q }
	: O extends { parameters: { query?: infer Q } }
		? [Q] extends [undefined]
			? { query?: undefined }
			: { query?: Q }
		: { query?: undefined };

type JsonOf<C> = C extends { content: { "application/json": infer B } } ? B : never;

type BodyPart<O> = O extends { requestBody: infer RB }
	? { body: JsonOf<RB> }
	: O extends { requestBody?: infer RB }
		? [RB] extends [undefined]
			? { body?: undefined }
			: { body?: JsonOf<RB> }
		: { body?: undefined };

/** What every call may add. */
export interface CallOptions {
	/** Aborts the call (and its retries); the call rejects with the signal's reason. */
	signal?: AbortSignal;
	/** Extra request headers (Authorization is the client's own). */
	headers?: Record<string, string>;
	/** `If-Match` for PATCH and DELETE of a credential: its `version` (ETag). */
	ifMatch?: number | string;
	/** Sent as `X-Request-Id` (`^[A-Za-z0-9._:-]{8,128}$`), to find the call in Latchkey's logs. */
	requestId?: string;
}

/** The options of a call of `M` on `P`: its path parameters, query and JSON body, typed. */
export type RequestOptions<P extends keyof paths, M extends HttpMethod> = PathParamsPart<
	Operation<P, M>
> &
	QueryPart<Operation<P, M>> &
	BodyPart<Operation<P, M>> &
	CallOptions;

/** The options argument, optional when none of its fields is required. */
export type RequestArgs<P extends keyof paths, M extends HttpMethod> =
	// biome-ignore lint/complexity/noBannedTypes: `{}` is the empty options object here
	{} extends RequestOptions<P, M>
		? [options?: RequestOptions<P, M>]
		: [options: RequestOptions<P, M>];

type SuccessStatus = 200 | 201 | 202 | 204;

type ResponseBody<R> = R extends { content: { "application/json": infer B } }
	? B
	: R extends { content: infer C }
		? [C] extends [undefined]
			? undefined
			: unknown
		: undefined;

/** The body of a successful answer of `M` on `P` (undefined for a 204). */
export type ResponseOf<P extends keyof paths, M extends HttpMethod> =
	Operation<P, M> extends { responses: infer R }
		? { [S in keyof R & SuccessStatus]: ResponseBody<R[S]> }[keyof R & SuccessStatus]
		: never;

/** A successful answer with what the body leaves out. */
export interface FullResponse<T> {
	data: T;
	status: number;
	headers: Headers;
	/** `X-Request-Id` of the answer. */
	requestId: string | null;
}
