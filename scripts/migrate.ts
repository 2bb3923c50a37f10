import { migrate } from "./lib/migrate.ts";

const url = process.env.DATABASE_URL;
if (!url) {
	console.error(
		"DATABASE_URL is not set. Example: DATABASE_URL=postgres://postgres@127.0.0.1:5432/latchkey npm run db:migrate",
	);
	process.exit(2);
}
await migrate(url);
console.log("migrations applied");
