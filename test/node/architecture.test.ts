import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The folder dependency graph of src/ runs one way (README, Architecture): the composition root
 * (src/app.ts, src/index.ts) over the capabilities, the capabilities over the infrastructure.
 * Each folder of src/ is one node; each top-level file is a node of its own, so src/errors.ts
 * can sit below everything while src/app.ts sits above it.
 */
const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");

/** Folders that serve every capability and so may know none of them. */
const INFRASTRUCTURE = ["http/", "db/", "redis/", "crypto/"];
/** The top-level files that compose the capabilities; every other top-level file is infrastructure. */
const ROOT = ["app.ts", "index.ts"];

interface Import {
	/** Importing file, relative to the repository (`src/auth/routes.ts`). */
	file: string;
	line: number;
	specifier: string;
	from: string;
	to: string;
}

function sourceFiles(dir: string): string[] {
	return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
		const path = join(dir, entry.name);
		if (entry.isDirectory()) return sourceFiles(path);
		return /\.(ts|tsx|js|mjs)$/.test(entry.name) ? [path] : [];
	});
}

/** `auth/` for src/auth/**, `app.ts` for src/app.ts. */
function nodeOf(absolute: string): string {
	const parts = relative(SRC, absolute).split(sep);
	return parts.length > 1 ? `${parts[0]}/` : (parts[0] as string);
}

// `import … from "…"`, `import type … from "…"`, `export … from "…"` (also across lines), bare
// `import "…"` and `import("…")`; only statements that begin a line, so comments do not count.
const STATIC = /^[ \t]*(?:import|export)\b[^;'"`]*?\bfrom\s*["']([^"']+)["']/gm;
const BARE = /^[ \t]*import\s*["']([^"']+)["']/gm;
const DYNAMIC = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

function importsOf(path: string): Import[] {
	const text = readFileSync(path, "utf8");
	const found: Import[] = [];
	for (const pattern of [STATIC, BARE, DYNAMIC]) {
		for (const match of text.matchAll(pattern)) {
			const specifier = match[1] as string;
			if (!specifier.startsWith(".")) continue;
			const target = resolve(dirname(path), specifier);
			if (relative(SRC, target).startsWith("..")) continue;
			found.push({
				file: relative(resolve(SRC, ".."), path).split(sep).join("/"),
				line: text.slice(0, match.index).split("\n").length,
				specifier,
				from: nodeOf(path),
				to: nodeOf(target),
			});
		}
	}
	return found;
}

const imports = sourceFiles(SRC).flatMap(importsOf);
const crossing = imports.filter((i) => i.from !== i.to);
const where = (i: Import) => `${i.file}:${i.line} "${i.specifier}"`;
const show = (i: Import) => `${i.from} → ${i.to}  (${where(i)})`;

/** One line per folder pair, naming every import behind it. */
function byPair(edges: Import[]): string[] {
	const pairs = new Map<string, string[]>();
	for (const i of edges) {
		const key = `${i.from} → ${i.to}`;
		pairs.set(key, [...(pairs.get(key) ?? []), where(i)]);
	}
	return [...pairs].map(([pair, at]) => `${pair}  (${at.join(", ")})`).sort();
}

/** Strongly connected components of the node graph (Tarjan); a cycle is one with two nodes or more. */
function components(edges: Import[]): string[][] {
	const next = new Map<string, Set<string>>();
	for (const { from, to } of edges) {
		if (!next.has(from)) next.set(from, new Set());
		if (!next.has(to)) next.set(to, new Set());
		next.get(from)?.add(to);
	}
	const index = new Map<string, number>();
	const low = new Map<string, number>();
	const stack: string[] = [];
	const onStack = new Set<string>();
	const result: string[][] = [];
	const visit = (node: string) => {
		index.set(node, index.size);
		low.set(node, index.get(node) as number);
		stack.push(node);
		onStack.add(node);
		for (const to of next.get(node) ?? []) {
			if (!index.has(to)) {
				visit(to);
				low.set(node, Math.min(low.get(node) as number, low.get(to) as number));
			} else if (onStack.has(to)) {
				low.set(node, Math.min(low.get(node) as number, index.get(to) as number));
			}
		}
		if (low.get(node) === index.get(node)) {
			const component: string[] = [];
			let member: string;
			do {
				member = stack.pop() as string;
				onStack.delete(member);
				component.push(member);
			} while (member !== node);
			result.push(component);
		}
	};
	for (const node of next.keys()) if (!index.has(node)) visit(node);
	return result;
}

describe("architecture: the folder graph of src/", () => {
	it("finds the imports it checks", () => {
		// A parser that found nothing would pass every rule below.
		expect(crossing.length).toBeGreaterThan(100);
		expect(crossing.some((i) => i.file === "src/index.ts" && i.to === "app.ts")).toBe(true);
	});

	it("has no cycle between folders", () => {
		const cycles = components(crossing).filter((c) => c.length > 1);
		// Every edge between two folders of one component lies on a cycle.
		const edges = byPair(
			crossing.filter((i) => cycles.some((c) => c.includes(i.from) && c.includes(i.to))),
		);
		expect(
			{ cycles: cycles.map((c) => c.sort().join(" ⇄ ")), edges },
			"imports between folders must run one way; these edges close a cycle",
		).toEqual({ cycles: [], edges: [] });
	});

	it("keeps the infrastructure free of capabilities", () => {
		const folders = new Set(crossing.flatMap((i) => [i.from, i.to]).filter((n) => n.endsWith("/")));
		const capabilities = [...folders].filter((f) => !INFRASTRUCTURE.includes(f));
		const isInfrastructure = (node: string) =>
			INFRASTRUCTURE.includes(node) || (!node.endsWith("/") && !ROOT.includes(node));
		const offending = crossing
			.filter(
				(i) => isInfrastructure(i.from) && (capabilities.includes(i.to) || ROOT.includes(i.to)),
			)
			.map(show);
		expect(
			offending,
			`${INFRASTRUCTURE.join(", ")} and top-level modules other than ${ROOT.join(", ")} import no capability`,
		).toEqual([]);
	});

	it("lets only src/index.ts import the composition root src/app.ts", () => {
		// And nothing imports the entry itself.
		const offending = crossing
			.filter((i) => (i.to === "app.ts" && i.file !== "src/index.ts") || i.to === "index.ts")
			.map(show);
		expect(offending, "src/app.ts composes the capabilities; only the entry imports it").toEqual(
			[],
		);
	});
});
