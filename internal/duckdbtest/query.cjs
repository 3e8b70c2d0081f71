// Runs SQL statements with DuckDB for the Go tests and benchmarks (see duckdbtest.go): reads a
// JSON array of statements on standard input, runs them in order in one fresh in-memory DuckDB,
// and prints a JSON array holding each statement's rows, as objects of column name to value
// (DuckDB's JSON rendering: integers wider than 32 bits and timestamps as strings); with
// --timed, each statement's wall time in milliseconds instead, measured here so that starting
// Node.js and DuckDB is not counted.
'use strict';
const path = require('node:path');
const { DuckDBInstance } = require(path.join(process.env.AUDITEXPORT_TEST_DUCKDB, 'node_modules', '@duckdb', 'node-api'));

async function main() {
  const timed = process.argv.includes('--timed');
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const statements = JSON.parse(input);
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const results = [];
  for (const sql of statements) {
    if (timed) {
      const start = process.hrtime.bigint();
      await conn.run(sql);
      results.push(Number(process.hrtime.bigint() - start) / 1e6);
    } else {
      const reader = await conn.runAndReadAll(sql);
      results.push(reader.getRowObjectsJson());
    }
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
});
