/** For responses that carry a secret or a token (API.md): no cache, shared or private, keeps them. */
export const NO_STORE = { "Cache-Control": "no-store", Pragma: "no-cache" } as const;

/**
 * Headers of one hop (RFC 9110 §7.6.1) and those the runtime sets itself: never forwarded by the
 * proxy, and never a header a provider's API key may be placed in.
 */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
	"connection",
	"keep-alive",
	"proxy-connection",
	"te",
	"trailer",
	"transfer-encoding",
	"upgrade",
	"host",
	"content-length",
]);
