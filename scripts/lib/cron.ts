/**
 * Enough of cron for wrangler.toml's `[triggers] crons` outside Cloudflare: five fields
 * (minute hour day-of-month month day-of-week) of `*`, numbers, ranges, lists and `/step`,
 * evaluated in UTC as Cloudflare does. Names (MON, JAN) and `L`/`W`/`#` are refused rather
 * than silently never firing.
 */
const FIELDS: Array<[min: number, max: number]> = [
	[0, 59],
	[0, 23],
	[1, 31],
	[1, 12],
	[0, 7],
];

export type CronSchedule = (at: Date) => boolean;

function parseField(text: string, [min, max]: [number, number], expr: string): Set<number> {
	const values = new Set<number>();
	for (const part of text.split(",")) {
		const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
		if (!m) throw new Error(`unsupported cron field "${part}" in "${expr}"`);
		const from = m[1] === "*" ? min : Number(m[2]);
		// `5/15` means from 5 to the end in steps of 15, as in Vixie cron.
		const to = m[1] === "*" || (m[3] === undefined && m[4]) ? max : Number(m[3] ?? m[2]);
		const step = Number(m[4] ?? 1);
		if (from < min || to > max || from > to || step < 1)
			throw new Error(`cron field "${part}" out of range in "${expr}"`);
		for (let v = from; v <= to; v += step) values.add(v);
	}
	return values;
}

export function parseCron(expr: string): CronSchedule {
	const parts = expr.trim().split(/\s+/);
	if (parts.length !== 5) throw new Error(`cron "${expr}" must have five fields`);
	const [minute, hour, dom, month, dow] = parts.map((p, i) =>
		parseField(p, FIELDS[i] as [number, number], expr),
	) as [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>];
	if (dow.has(7)) dow.add(0);
	const domAny = parts[2] === "*";
	const dowAny = parts[4] === "*";
	return (at) => {
		if (!minute.has(at.getUTCMinutes()) || !hour.has(at.getUTCHours())) return false;
		if (!month.has(at.getUTCMonth() + 1)) return false;
		const domHit = dom.has(at.getUTCDate());
		const dowHit = dow.has(at.getUTCDay());
		// Classic cron: when both day fields are restricted, either one matching is enough.
		if (!domAny && !dowAny) return domHit || dowHit;
		return domHit && dowHit;
	};
}
