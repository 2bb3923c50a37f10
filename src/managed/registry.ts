import { eq } from "drizzle-orm";
import { managedProviderConfigs } from "../db/schema.ts";
import type { Services } from "../services.ts";
import { AGENTMAIL_ID, agentmailProvider } from "./agentmail.ts";
import { findProvisionerConfig, genericProvider } from "./generic.ts";
import type { ManagedProvider } from "./provider.ts";

/**
 * Providers built into the code, registered from this one list. Admin-configured generic
 * provisioners (table managed_provider_configs) join them at run time.
 */
export const BUILTIN_MANAGED_PROVIDERS: readonly ManagedProvider[] = [agentmailProvider];

/** Ids a generic provisioner may not take: the built-in managed providers'. */
export const RESERVED_MANAGED_IDS: ReadonlySet<string> = new Set(
	BUILTIN_MANAGED_PROVIDERS.map((p) => p.id),
);

/**
 * Every provider that provisions in this deployment now: built-ins whose configuration is
 * present, and enabled generic provisioners. Reads the config table (one query); the listing's
 * hot path does not call this (it reads the Redis mirror in src/managed/service.ts).
 */
export async function managedProviders(services: Services): Promise<ManagedProvider[]> {
	const builtins: ManagedProvider[] = [];
	for (const provider of BUILTIN_MANAGED_PROVIDERS) {
		if (await provider.available(services)) builtins.push(provider);
	}
	const rows = await services.db
		.select()
		.from(managedProviderConfigs)
		.where(eq(managedProviderConfigs.enabled, true));
	return [...builtins, ...rows.sort((a, b) => a.id.localeCompare(b.id)).map(genericProvider)];
}

/**
 * The provider with this id, for deprovisioning what it provisioned earlier. A generic
 * provisioner is returned even when disabled: disabling stops new provisioning, but what it
 * made must still be removable (and a config with provisionings cannot be deleted, see
 * deleteProvisionerConfig). AgentMail is returned whenever it is built in, even with
 * AGENTMAIL_API_KEY unset: its deprovision then throws a transient ManagedProviderError, so the
 * job retries (with backoff) until the operator restores the key rather than forgetting a pod.
 * Undefined only for an id no provider has.
 */
export async function findManagedProvider(
	services: Services,
	id: string,
): Promise<ManagedProvider | undefined> {
	const builtin = BUILTIN_MANAGED_PROVIDERS.find((p) => p.id === id);
	if (builtin) return builtin;
	const row = await findProvisionerConfig(services, id);
	return row ? genericProvider(row) : undefined;
}

export { AGENTMAIL_ID };
