// Turns vitest's JSON report into the plain closing line CI reads, and fails the run on any
// skipped or todo test: a test that does not run on CI proves nothing.
import { readFileSync } from "node:fs";

const report = JSON.parse(readFileSync(process.argv[2], "utf8"));
const passed = report.numPassedTests;
const failed = report.numFailedTests;
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
if (report.numTotalTests === 0) {
	console.error("no test ran");
	process.exit(1);
}
if (failed > 0 || !report.success) process.exit(1);
if (skipped > 0) {
	console.error("skipped or todo tests are not allowed on CI");
	process.exit(1);
}
