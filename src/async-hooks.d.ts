// workerd provides node:async_hooks under nodejs_compat; @cloudflare/workers-types does not
// declare it. Only what Latchkey uses.
declare module "node:async_hooks" {
	export class AsyncLocalStorage<T> {
		getStore(): T | undefined;
		run<R>(store: T, callback: () => R): R;
	}
}
