/** For responses that carry a secret or a token (API.md): no cache, shared or private, keeps them. */
export const NO_STORE = { "Cache-Control": "no-store", Pragma: "no-cache" } as const;
