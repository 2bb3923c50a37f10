// Turns vitest's JSON report into the plain closing line CI reads, and fails the run on any
// skipped or todo test: a test that does not run on CI proves nothing.
import { readFileSync } from "node:fs";

// Several reports (one per engine set) add up to one line.
const reports = process.argv.slice(2).map((file) => JSON.parse(readFileSync(file, "utf8")));
const sum = (field) => reports.reduce((n, r) => n + r[field], 0);
const passed = sum("numPassedTests");
const failed = sum("numFailedTests");
const skipped = sum("numPendingTests") + sum("numTodoTests");
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
if (reports.some((r) => r.numTotalTests === 0)) {
	console.error("a run executed no test");
	process.exit(1);
}
if (failed > 0 || reports.some((r) => !r.success)) process.exit(1);
if (skipped > 0) {
	console.error("skipped or todo tests are not allowed on CI");
	process.exit(1);
}
